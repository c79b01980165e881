"""Drain the ready runs: what a wake-up job does, and what `runstate worker --burst` does first.

Runs whose inboxes hold events wait in the ready set, oldest first. A turn claims a slice of
them, drains it, and claims again until none are left, so one wake-up job carries as many
events as arrived while it worked: RQ's cost is paid per turn, not per event. When runs are
left after a claim and no wake-up job is queued, it enqueues one, so idle workers join in.
The claims are drained by the processor's one driver (`Processor.drive`), which overlaps
each claim's apply with the previous claim's commits.
"""

import contextlib
import time
from collections.abc import Iterator

from worker.drain.parts import DrainParts
from worker.drain.processor import BatchReport
from worker.store.keys import RunRef

CLAIM_RUNS = 100  # runs one claim takes at most: one load, one commit round trip for all of them
# ... and a quarter of the backlog, never fewer than 10: as a backlog ends the slices shrink, so
# workers draining it together finish together instead of one idling while another still
# holds two whole claims (the one it applies and the one being committed)
CLAIM_FEWEST, CLAIM_SHARE = 10, 4
TURN_SECONDS = 5.0  # a turn hands what is left to a fresh job after this long: RQ's housekeeping runs


def drain_ready(parts: DrainParts, *, wake_consumed: bool, seconds: float = TURN_SECONDS) -> BatchReport:
    """Claim and drain ready runs until none are left or `seconds` have passed."""
    report = BatchReport()
    claims = _Claims(parts, wake_consumed, time.monotonic() + seconds)
    holding: list[RunRef] = []  # runs taken from the ready set and not yet committed
    try:
        parts.processor.drive(iter(claims), report, holding)
    except Exception:
        # Redis failed mid-turn: give the runs this turn holds back to the ready set, so the next
        # worker takes them at once rather than when their timers fall due (best effort: if
        # Redis is still down, the timers do it)
        with contextlib.suppress(Exception):
            parts.store.make_ready(holding)
        raise
    if claims.out_of_time and parts.store.claim_ready(0, wake_consumed=False).wake_wanted:
        parts.publisher.wake()  # out of time: the rest gets a job
    return report


class _Claims:
    """The ready runs, a claim at a time, until none are left or the turn's time is up."""

    def __init__(self, parts: DrainParts, wake_consumed: bool, deadline: float) -> None:
        self.parts, self.consume, self.deadline = parts, wake_consumed, deadline
        self.out_of_time = False

    def __iter__(self) -> Iterator[list[RunRef]]:
        store = self.parts.store
        while True:
            if time.monotonic() >= self.deadline:
                self.out_of_time = True
                return
            claim = store.claim_ready(CLAIM_RUNS, wake_consumed=self.consume, fewest=CLAIM_FEWEST, share=CLAIM_SHARE)
            self.consume = False
            if claim.wake_wanted:
                self.parts.publisher.wake()
            if not claim.runs:
                return
            yield list(claim.runs)
