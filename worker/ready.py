"""Drain the ready runs: what a wake-up job does, and what `runstate worker --burst` does first.

Runs whose inboxes hold events wait in the ready set, oldest first. A turn claims a slice of
them, drains it, and claims again until none are left, so one wake-up job carries as many
events as arrived while it worked: RQ's cost is paid per turn, not per event. When runs are
left after a claim and no wake-up job is queued, it enqueues one, so idle workers join in.
"""

import time

from worker.processor import BatchReport
from worker.runtime import Runtime

CLAIM_RUNS = 100  # runs one claim takes: one load, one commit round trip for all of them
TURN_SECONDS = 5.0  # a turn hands what is left to a fresh job after this long: RQ's housekeeping runs


def drain_ready(runtime: Runtime, *, wake_consumed: bool, seconds: float = TURN_SECONDS) -> BatchReport:
    """Claim and drain ready runs until none are left or `seconds` have passed."""
    report = BatchReport()
    deadline = time.monotonic() + seconds
    consume = wake_consumed
    while True:
        claim = runtime.store.claim_ready(CLAIM_RUNS, wake_consumed=consume)
        consume = False
        if claim.wake_wanted:
            runtime.publisher.wake()
        if not claim.runs:
            return report
        report.add(runtime.processor.drain(list(claim.runs)))
        if time.monotonic() > deadline:
            if runtime.store.claim_ready(0, wake_consumed=False).wake_wanted:  # what is left gets a job
                runtime.publisher.wake()
            return report
