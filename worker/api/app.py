"""The HTTP API (FastAPI): ingest events, read, cancel and delete runs, and manage webhook
subscriptions, per account (Bearer tokens), within a rate limit per token.

Errors are always `{"error": {"code", "message"}}` with re-factor's codes; another account's
run answers 404, exactly like a missing one; Redis trouble answers 503 with Retry-After
(`unavailable`). Every request passes the `guard` first: token, body cap, body deadline.
`/healthz`, `/metrics` and `/openapi.json` need no token.
"""

from importlib import metadata
from typing import Any

from fastapi import APIRouter, FastAPI

from worker.api import azure as api_azure
from worker.api import errors as api_errors
from worker.api import events as api_events
from worker.api import letta as api_letta
from worker.api import metrics as api_metrics
from worker.api import runs as api_runs
from worker.api import traces as api_traces
from worker.api import unavailable
from worker.api import webhooks as api_webhooks
from worker.api.auth import Rt
from worker.api.errors import RESPONSES
from worker.api.guard import Guard
from worker.api.ratelimit import RateLimit
from worker.api.schemas import Health
from worker.runtime import Runtime
from worker.store import keys
from worker.webhooks.ssrf import Resolver

health = APIRouter()


HEALTH_TTL_MS = 10_000


@health.get("/healthz", response_model=None, responses={200: {"model": Health}, 503: RESPONSES[503]})
def healthz(runtime: Rt) -> dict[str, str]:
    """Whether Redis takes a write (a SET of one small key with a 10 s TTL), so a Redis that is
    full, read-only or loading fails the check as a down one does: 503 naming which. No token needed."""
    runtime.redis.set(keys.HEALTH, "ok", px=HEALTH_TTL_MS)
    return {"status": "ok"}


def create_app(runtime: Runtime, *, rate_limit: RateLimit | None = None, resolve: Resolver | None = None) -> FastAPI:
    """The app; `rate_limit` defaults to RUNSTATE_API_RATE_LIMIT's (none when unset), `resolve`
    (how the SSRF guard resolves webhook hosts) to the system's resolver."""
    app = FastAPI(title="runstate", version=metadata.version("runstate"), description=__doc__)
    app.state.runtime = runtime
    app.state.tokens = runtime.settings.api_token_accounts()
    app.state.rate_limit = rate_limit or _rate_limit_of(runtime)
    app.state.resolve = resolve
    app.state.metrics = api_metrics.registry(runtime)
    api_errors.install(app)
    unavailable.install(app)
    app.add_middleware(Guard, tokens=app.state.tokens, read_timeout=runtime.settings.api_read_timeout)
    for router in (
        health,
        api_metrics.router,
        api_events.router,
        api_runs.router,
        api_traces.router,
        api_webhooks.router,
        api_azure.router,
        api_letta.router,
    ):
        app.include_router(router)
    _with_event_schemas(app)
    return app


def _rate_limit_of(runtime: Runtime) -> RateLimit | None:
    per_second = runtime.settings.api_rate_limit
    if per_second is None:
        return None
    return RateLimit(runtime.redis, runtime.settings.effective_redis_url, per_second)


def _with_event_schemas(app: FastAPI) -> None:
    """Put the event models' schemas, which POST /v1/events' body refers to, in the document."""
    build = app.openapi

    def openapi() -> dict[str, Any]:
        document = build()  # built once, then cached by FastAPI
        document.setdefault("components", {}).setdefault("schemas", {}).update(api_events.EVENT_COMPONENTS)
        return document

    app.openapi = openapi  # type: ignore[method-assign]
