"""Every worker sweeps the one timer index: due runs are drained (queued events no job
drained, held events whose reorder window ended, deadlines). Entries are claimed atomically
with a lease, so two sweepers never hold one at once and a sweeper that dies loses nothing.

The sweep also does the process's housekeeping: it adds the histograms recorded since the
last sweep to Redis (for /metrics) and takes expired runs out of the runs index.
"""

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import structlog

from worker.drain.metrics import TIMER_LAG
from worker.drain.parts import DrainParts
from worker.store import keys
from worker.store.keys import RunRef

log = structlog.get_logger("runstate.sweeper")

SWEEP_INTERVAL = 0.5  # seconds between sweeps: every due timer is seen within a second
CLAIM_LIMIT = 500
PRUNE_INTERVAL = 10.0  # seconds between passes over the runs index
PRUNE_LIMIT = 500


class Sweeper:
    def __init__(self, runtime: DrainParts, interval: float = SWEEP_INTERVAL) -> None:
        self.runtime = runtime
        self.interval = interval
        self._stop = threading.Event()
        self._pruned_at = 0.0

    def sweep_once(self) -> int:
        """Handle every timer due now; returns how many were claimed."""
        store = self.runtime.store
        handled = 0
        while True:
            now, due = store.claim_due_at(CLAIM_LIMIT)
            if not due:
                break
            self.runtime.recorder.observe(TIMER_LAG, [max(0, now - at) / 1000 for _, at in due])
            runs = [RunRef(m.removeprefix(keys.RUN_TIMER)) for m, _ in due if m.startswith(keys.RUN_TIMER)]
            if runs:
                self.runtime.processor.drain(runs)
            handled += len(due)
            if len(due) < CLAIM_LIMIT:
                break
        if handled:
            log.info("timers.swept", handled=handled)
        return handled

    def housekeeping(self) -> None:
        self.runtime.recorder.flush(self.runtime.redis)
        if time.monotonic() - self._pruned_at >= PRUNE_INTERVAL:
            self._pruned_at = time.monotonic()
            while self.runtime.store.prune_expired(PRUNE_LIMIT) == PRUNE_LIMIT:
                pass

    def sweep_safely(self) -> None:
        try:
            self.sweep_once()
            self.housekeeping()
        except Exception:  # a sweep must never stop sweeping: log, wait, try again
            log.exception("timers.sweep_failed")

    def _loop(self) -> None:
        while not self._stop.wait(self.interval):
            self.sweep_safely()

    @contextmanager
    def running(self) -> Iterator[None]:
        """Sweep in a background thread while the block runs."""
        thread = threading.Thread(target=self._loop, name="runstate-sweeper", daemon=True)
        thread.start()
        try:
            yield
        finally:
            self._stop.set()
            thread.join(timeout=10)
            self.flush_safely()  # what this process recorded since its last sweep reaches Redis

    def flush_safely(self) -> None:
        try:
            self.runtime.recorder.flush(self.runtime.redis)
        except Exception:
            log.exception("metrics.flush_failed")
