"""Redis faults a process rides out instead of dying of: the server gone (restart, crash,
failover), refusing our credentials, busy (a long script, loading its data set), read-only
(a primary demoted to a replica), full (maxmemory reached), unable to persist (MISCONF), short of replicas
(NOREPLICAS), or a cluster down or moving keys. One table, `FAULTS`, says both whether an
error is such a fault (`is_fault`: the loops wait, the API answers 503) and what a person is
told about it (`reason`), so the two cannot disagree.

Each process loop (RQ's work loop, the sweeper, the webhook sender) keeps one `Outage`: it
logs once when Redis starts failing, with the reason, and once when it answers again, and
says how long to wait before the next attempt (capped exponential backoff with jitter, so
workers restarted together do not hammer a recovering server in step). Nothing is lost while
it waits: events stay in their inboxes, due timers in the timer index, claimed work under a
lease that lapses; the loop's next attempt simply carries on.
"""

import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

import structlog
from redis import Redis
from redis import exceptions as errors
from redis.backoff import EqualJitterBackoff

from worker.store import keys

log = structlog.get_logger("runstate.redis")

T = TypeVar("T")


CREDENTIALS = "set the user and password in REDIS_URL (redis://USER:PASSWORD@host:port)"


@dataclass(frozen=True)
class Fault:
    """One way Redis cannot take writes now, and the line a person is told about it (the API's
    503 message, the CLI's one line). `code` is the first word of Redis's error reply; `kind`
    the class redis-py raises for it, if it has one (it then drops the code from the message)."""

    code: str | None
    kind: type[errors.RedisError] | None
    told: str


# The faults a loop rides out and the API answers 503: states Redis leaves by itself or by an
# operator's hand. An error that matches none of them is a bug. Matched in order, so a class
# comes before its base. Both a class and a code, because redis-py raises a class of its own
# for some codes, depending on its version, and a plain ResponseError for the rest.
FAULTS = (
    Fault("LOADING", errors.BusyLoadingError, "Redis is loading its data"),  # a ConnectionError
    # NOAUTH and WRONGPASS, also a ConnectionError: ridden out like the others (credentials may
    # be mid-rotation), but told as what it is, with the fix
    Fault("WRONGPASS", errors.AuthenticationError, f"Redis refused the credentials: {CREDENTIALS}"),
    # A sentinel-managed connection turns READONLY into a ConnectionError too, after dropping the
    # connection so the next one asks for the new primary.
    Fault(None, errors.ConnectionError, "Redis is unreachable"),
    Fault(None, errors.TimeoutError, "Redis is unreachable"),
    Fault("READONLY", errors.ReadOnlyError, "Redis is a read-only replica and refuses writes"),
    Fault("MASTERDOWN", errors.MasterDownError, "Redis has lost its primary"),  # a ClusterDownError
    Fault("CLUSTERDOWN", errors.ClusterDownError, "Redis Cluster is down"),
    Fault("TRYAGAIN", errors.TryAgainError, "Redis Cluster is moving keys"),
    Fault("NOREPLICAS", None, "Redis has too few replicas to take writes"),
    Fault("OOM", errors.OutOfMemoryError, "Redis is out of memory (maxmemory) and refuses writes"),
    Fault("MISCONF", None, "Redis cannot persist its data and refuses writes"),
    Fault("BUSY", None, "Redis is busy running a script"),
)
_CODES = {fault.code: fault for fault in FAULTS if fault.code is not None}
# The code is the reply's first word (`BUSYKEY` is not `BUSY`), after what redis-py puts before
# it for a pipeline's command, and what Redis before 7 puts before the error of a call inside a
# script: `Error running script (call to f_…): @user_script:1: @user_script: 1: -OOM command …`.
_IN_PIPELINE = r"Command # \d+ \(.*?\) of pipeline caused error: "
_IN_SCRIPT = r"Error running script \(call to \w+\): (?:@\S+ ?\d+: )*-?"
_CODE = re.compile(rf"(?:{_IN_PIPELINE})?(?:{_IN_SCRIPT})?([A-Z][A-Z0-9_]*)(?: |$)")


def classify(error: BaseException) -> Fault | None:
    """The fault `error` is, or None when it is none (a bug, or not from Redis)."""
    for fault in FAULTS:
        if fault.kind is not None and isinstance(error, fault.kind):
            return fault
    if isinstance(error, errors.ResponseError):
        code = _CODE.match(str(error))
        return _CODES.get(code.group(1)) if code else None
    return None


def is_fault(error: BaseException) -> bool:
    """A Redis fault that passes (the server is back, promoted, or freed memory), not a bug."""
    return classify(error) is not None


def reason(error: BaseException) -> str | None:
    """What a person is told when `error` means Redis cannot take writes now; None for any other error."""
    found = classify(error)
    return found.told if found is not None else None


BACKOFF_BASE = 0.05  # seconds before the first retry
BACKOFF_CAP = 2.0  # seconds between retries at most: a loop is back within this of Redis
PROBE_TTL_MS = 10_000


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
            log.warning("redis.unavailable", loop=self.loop, reason=reason(error), error=describe(error))
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
