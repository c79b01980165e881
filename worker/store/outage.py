"""Redis faults a process rides out instead of dying of: the server gone (restart, crash,
failover), busy (a long script, loading its data set), read-only (a primary demoted to a
replica) or full (maxmemory reached).

Each process loop (RQ's work loop, the sweeper, the webhook sender) keeps one `Outage`: it
logs once when Redis starts failing, with the reason, and once when it answers again, and
says how long to wait before the next attempt (capped exponential backoff with jitter, so
workers restarted together do not hammer a recovering server in step). Nothing is lost while
it waits: events stay in their inboxes, due timers in the timer index, claimed work under a
lease that lapses; the loop's next attempt simply carries on.
"""

import time
from collections.abc import Callable
from typing import TypeVar

import structlog
from redis import Redis
from redis import exceptions as _errors
from redis.backoff import EqualJitterBackoff
from redis.exceptions import (
    ConnectionError,
    MasterDownError,
    OutOfMemoryError,
    ReadOnlyError,
    ResponseError,
    TimeoutError,
    TryAgainError,
)

from worker.store import keys

log = structlog.get_logger("runstate.redis")

T = TypeVar("T")

# BusyLoadingError (LOADING) is a ConnectionError; a sentinel-managed connection turns READONLY
# into one as well, after dropping the connection so the next one asks for the new primary.
FAULTS = (ConnectionError, TimeoutError, ReadOnlyError, OutOfMemoryError, MasterDownError, TryAgainError)
# Answers redis-py has no class for, by their error code: a script running too long, replicas missing.
FAULT_CODES = ("BUSY ", "NOREPLICAS ", "OOM ")
BACKOFF_BASE = 0.05  # seconds before the first retry
BACKOFF_CAP = 2.0  # seconds between retries at most: a loop is back within this of Redis
PROBE_TTL_MS = 10_000


def is_fault(error: BaseException) -> bool:
    """A Redis fault that passes (the server is back, promoted, or freed memory), not a bug."""
    if isinstance(error, FAULTS):
        return True
    return isinstance(error, ResponseError) and str(error).startswith(FAULT_CODES)


def describe(error: BaseException) -> str:
    return f"{type(error).__name__}: {error}"[:300]


class Outage:
    """One loop's view of Redis: whether it is failing, since when, and the next wait."""

    def __init__(self, loop: str, *, base: float = BACKOFF_BASE, cap: float = BACKOFF_CAP) -> None:
        self.loop = loop
        self.backoff = EqualJitterBackoff(cap=cap, base=base)
        self.failures = 0
        self.since = 0.0

    @property
    def ongoing(self) -> bool:
        return self.failures > 0

    def failed(self, error: BaseException) -> float:
        """Count a failed attempt (logged only if it starts an outage); seconds to wait before the next."""
        if not self.failures:
            self.since = time.monotonic()
            log.warning("redis.unavailable", loop=self.loop, reason=describe(error))
        self.failures += 1
        return float(self.backoff.compute(self.failures))

    def recovered(self) -> None:
        """An attempt succeeded: an outage in progress ends (logged once, with its length)."""
        if self.failures:
            took = round(time.monotonic() - self.since, 3)
            log.warning("redis.available", loop=self.loop, after_seconds=took, attempts=self.failures)
            self.failures = 0


def probe(redis: Redis) -> None:
    """A write, so a server that answers but refuses writes (full, read-only, loading) fails it too."""
    redis.set(keys.PROBE, b"1", px=PROBE_TTL_MS)


def patiently(call: Callable[[], T], outage: Outage) -> T:
    """`call()`, tried again after each Redis fault until it succeeds: for a process's start-up,
    which must not fail because Redis is restarting or failing over right then."""
    while True:
        try:
            result = call()
        except Exception as error:
            if not is_fault(error):
                raise
            time.sleep(outage.failed(error))
            continue
        outage.recovered()
        return result


# What a person is told about a Redis fault (the API's 503 message, the CLI's one line).
# redis-py raises a class of its own for some error replies (and drops the reply's first word
# from the message); the others stay a ResponseError whose message starts with that word.
_CLASSES: list[tuple[type[_errors.RedisError], str]] = [
    (_errors.BusyLoadingError, "Redis is loading its data"),  # before ConnectionError, its base
    (_errors.ConnectionError, "Redis is unreachable"),
    (_errors.TimeoutError, "Redis is unreachable"),
    (_errors.OutOfMemoryError, "Redis is out of memory (maxmemory) and refuses writes"),
    (_errors.ReadOnlyError, "Redis is a read-only replica and refuses writes"),
    (_errors.MasterDownError, "Redis has lost its primary"),
]
_REPLIES = {
    "BUSY": "Redis is busy running a script",
    "MISCONF": "Redis cannot persist its data and refuses writes",
}


def reason(exc: _errors.RedisError) -> str | None:
    """What the client is told, when `exc` means Redis is unavailable; None for any other error."""
    for kind, told in _CLASSES:
        if isinstance(exc, kind):
            return told
    if isinstance(exc, _errors.ResponseError):
        return _REPLIES.get(str(exc).split(" ", 1)[0])
    return None
