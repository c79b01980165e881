"""Redis trouble over HTTP: `503 SERVICE_UNAVAILABLE` with `Retry-After`, never a 500.

Redis unreachable (refused, reset, timed out), loading its data after a restart, out of memory
(`maxmemory` reached with `noeviction`), read-only (a replica), busy with a script, unable to
persist (MISCONF), short of replicas: each is a state Redis leaves by itself or by an
operator's hand, so the client is told what is wrong and to come back. Which errors these are,
and the line told, is the table in `worker.store.outage`, the one the worker's loops use. The
Redis address and error text stay in the log, not in the answer. Any other Redis error is a
bug: 500, like every crash.
"""

import time

import structlog
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from redis import exceptions as redis_errors

from worker.api.errors import error_response
from worker.store.outage import reason

log = structlog.get_logger("runstate.api")

RETRY_AFTER = 5  # seconds: about what a Redis restart or failover takes
LOG_EVERY = 10.0  # seconds between two log lines of one reason, so an outage does not flood the log


class _Throttled:
    """Logs each reason at most once every LOG_EVERY seconds."""

    def __init__(self) -> None:
        self.last: dict[str, float] = {}

    def warn(self, why: str, exc: Exception) -> None:
        now = time.monotonic()
        if now - self.last.get(why, -LOG_EVERY) >= LOG_EVERY:
            self.last[why] = now
            log.warning("api.redis_unavailable", reason=why, error=f"{type(exc).__name__}: {exc}")


def install(app: FastAPI) -> None:
    """Answer Redis trouble 503; any other Redis error goes on to the 500 handler."""
    throttled = _Throttled()

    async def unavailable(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, redis_errors.RedisError)
        why = reason(exc)
        if why is None:
            raise exc  # a bug, not an outage: ServerErrorMiddleware answers 500 and logs it
        throttled.warn(why, exc)
        return error_response(
            503, "SERVICE_UNAVAILABLE", f"{why}; retry in {RETRY_AFTER} s", headers={"Retry-After": str(RETRY_AFTER)}
        )

    app.add_exception_handler(redis_errors.RedisError, unavailable)
