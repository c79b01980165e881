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
from worker.store.outage import Outage, is_fault

log = structlog.get_logger("runstate.sweeper")

SWEEP_INTERVAL = 0.5  # seconds between sweeps: every due timer is seen within a second
CLAIM_LIMIT = 500
PRUNE_INTERVAL = 10.0  # seconds between passes over the runs index
PRUNE_LIMIT = 500
# seconds a stopping worker waits for a sweep in progress: SIGTERM stops a worker within 2 s,
# and a sweep cut short loses nothing (what it claimed comes back when the claim's lease ends)
STOP_WAIT = 1.0


class Sweeper:
    def __init__(self, runtime: DrainParts, interval: float = SWEEP_INTERVAL) -> None:
        self.runtime = runtime
        self.interval = interval
        self._stop = threading.Event()
        self._pruned_at = 0.0
        self.outage = Outage("sweeper")

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

    def sweep_safely(self) -> float:
        """One sweep; returns the seconds to wait before the next (backing off while Redis fails)."""
        try:
            self.sweep_once()
            self.housekeeping()
        except Exception as error:  # a sweep must never stop sweeping: log, wait, try again
            if is_fault(error):
                return self.outage.failed(error)  # logged once per outage
            log.exception("timers.sweep_failed")
            return self.interval
        self.outage.recovered()
        return self.interval

    def _loop(self) -> None:
        wait = self.interval
        while not self._stop.wait(wait):
            wait = self.sweep_safely()

    @contextmanager
    def running(self) -> Iterator[None]:
        """Sweep in a background thread while the block runs."""
        thread = threading.Thread(target=self._loop, name="runstate-sweeper", daemon=True)
        thread.start()
        try:
            yield
        finally:
            self._stop.set()
            thread.join(timeout=STOP_WAIT)
            self.flush_safely()  # what this process recorded since its last sweep reaches Redis

    def flush_safely(self) -> None:
        try:
            self.runtime.recorder.flush(self.runtime.redis)
        except Exception as error:
            if not is_fault(error):
                log.exception("metrics.flush_failed")
