"""What workers measure for /metrics: histograms kept in memory and added to Redis now and then.

Every worker process records into its own `Recorder` (no I/O on the hot path); the sweeper
thread flushes it into one Redis hash twice a second, so the API's /metrics reports the
figures of every worker on every host. Counters of outcomes are written by the commits
themselves (see `store`); this module holds only the histograms.
"""

import bisect
import os
import threading
from collections.abc import Iterable
from dataclasses import dataclass, field

from redis import Redis

from worker.store import keys
from worker.store.envelope import time_ms

# Upper bounds in seconds (Prometheus' `le`), wide enough for a busy queue and a late timer.
LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)

APPLY_LATENCY = "apply_latency"  # seconds from publish to applied, per event
TIMER_LAG = "timer_lag"  # seconds from a timer's due time to its claim by a sweeper
HISTOGRAMS = (APPLY_LATENCY, TIMER_LAG)


@dataclass(slots=True)
class _Counts:
    buckets: list[int] = field(default_factory=lambda: [0] * (len(LATENCY_BUCKETS) + 1))  # the last: +Inf
    total: float = 0.0
    count: int = 0


class Recorder:
    """Histograms of one process, safe to record into from the job and the sweeper thread."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counts = {name: _Counts() for name in HISTOGRAMS}
        # A forked child (RQ's work horse) starts empty, with a lock no thread of its own holds:
        # what the parent recorded is the parent's to flush.
        os.register_at_fork(after_in_child=self._start_afresh)

    def _start_afresh(self) -> None:
        self._lock = threading.Lock()
        self._counts = {name: _Counts() for name in HISTOGRAMS}

    def observe_latency(self, published_at: Iterable[int]) -> None:
        """Events just applied, by when they were published (ms; 0 where unknown)."""
        now = time_ms()
        self.observe(APPLY_LATENCY, [max(0, now - at) / 1000 for at in published_at if at > 0])

    def observe(self, name: str, seconds: list[float]) -> None:
        if not seconds:
            return
        with self._lock:
            counts = self._counts[name]
            for value in seconds:
                counts.buckets[bisect.bisect_left(LATENCY_BUCKETS, value)] += 1
            counts.total += sum(seconds)
            counts.count += len(seconds)

    def flush(self, redis: Redis) -> None:
        """Add what was recorded since the last flush to Redis; kept for the next flush if Redis fails."""
        with self._lock:
            taken, self._counts = self._counts, {name: _Counts() for name in HISTOGRAMS}
        pending = {name: c for name, c in taken.items() if c.count}
        if not pending:
            return
        try:
            with redis.pipeline(transaction=True) as pipe:
                for name, counts in pending.items():
                    for bound, n in zip((*LATENCY_BUCKETS, "+Inf"), counts.buckets, strict=True):
                        if n:
                            pipe.hincrby(keys.METRICS, f"{name}:le:{bound}", n)
                    pipe.hincrbyfloat(keys.METRICS, f"{name}:sum", counts.total)
                    pipe.hincrby(keys.METRICS, f"{name}:count", counts.count)
                pipe.execute()
        except Exception:
            self._restore(pending)
            raise

    def _restore(self, pending: dict[str, _Counts]) -> None:
        with self._lock:
            for name, old in pending.items():
                counts = self._counts[name]
                counts.buckets = [a + b for a, b in zip(counts.buckets, old.buckets, strict=True)]
                counts.total += old.total
                counts.count += old.count
