"""Every worker sweeps the one timer index: due runs are drained (queued events no job
drained, held events whose reorder window ended). Entries are claimed atomically with a
lease, so two sweepers never hold one at once and a sweeper that dies loses nothing.
"""

import threading
from collections.abc import Iterator
from contextlib import contextmanager

import structlog

from worker import keys
from worker.runtime import Runtime

log = structlog.get_logger("runstate.sweeper")

SWEEP_INTERVAL = 0.5  # seconds between sweeps: every due timer is seen within a second
CLAIM_LIMIT = 500


class Sweeper:
    def __init__(self, runtime: Runtime, interval: float = SWEEP_INTERVAL) -> None:
        self.runtime = runtime
        self.interval = interval
        self._stop = threading.Event()

    def sweep_once(self) -> int:
        """Handle every timer due now; returns how many were claimed."""
        handled = 0
        while members := self.runtime.store.claim_due(CLAIM_LIMIT):
            prefix = keys.run_timer("")
            run_ids = [m.removeprefix(prefix) for m in members if m.startswith(prefix)]
            if run_ids:
                self.runtime.processor.drain(run_ids)
            handled += len(members)
            if len(members) < CLAIM_LIMIT:
                break
        if handled:
            log.info("timers.swept", handled=handled)
        return handled

    def sweep_safely(self) -> None:
        try:
            self.sweep_once()
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
