"""Drain the ready runs: what a wake-up job does, and what `runstate worker --burst` does first.

Runs whose inboxes hold events wait in the ready set, oldest first. A turn claims a slice of
them, drains it, and claims again until none are left, so one wake-up job carries as many
events as arrived while it worked: RQ's cost is paid per turn, not per event. When runs are
left after a claim and no wake-up job is queued, it enqueues one, so idle workers join in.

Redis and the worker take turns as little as they can: the next claim is read first, then the
previous claim's commits are sent (a second thread waits for their answers, the GIL free
meanwhile), and the next claim is applied while Redis runs those commits. A run in both claims
(new events made it ready again) simply loses one compare-and-set and is drained again.
"""

import contextlib
import time
from concurrent.futures import Future, ThreadPoolExecutor

from worker.drain.parts import DrainParts
from worker.drain.processor import BatchReport, Pass

CLAIM_RUNS = 100  # runs one claim takes at most: one load, one commit round trip for all of them
# ... and a quarter of the backlog, never fewer than 10: as a backlog ends the slices shrink, so
# workers draining it together finish together instead of one idling while another still
# holds two whole claims (the one it applies and the one being committed)
CLAIM_FEWEST, CLAIM_SHARE = 10, 4
TURN_SECONDS = 5.0  # a turn hands what is left to a fresh job after this long: RQ's housekeeping runs

InFlight = tuple[Pass, "Future[list[bool]]"]


def drain_ready(runtime: DrainParts, *, wake_consumed: bool, seconds: float = TURN_SECONDS) -> BatchReport:
    """Claim and drain ready runs until none are left or `seconds` have passed."""
    processor, store = runtime.processor, runtime.store
    report = BatchReport()
    deadline = time.monotonic() + seconds
    consume = wake_consumed
    claimed: list[str] = []  # runs taken from the ready set and not yet committed
    planned: Pass | None = None  # applied, its commits not yet sent
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="runstate-commit") as committer:
        try:
            while True:
                claim = (
                    store.claim_ready(CLAIM_RUNS, wake_consumed=consume, fewest=CLAIM_FEWEST, share=CLAIM_SHARE)
                    if time.monotonic() < deadline
                    else None
                )
                consume = False
                if claim is not None and claim.wake_wanted:
                    runtime.publisher.wake()
                claimed = [*(planned.prepared if planned is not None else ()), *(claim.runs if claim else ())]
                reading = processor.read(list(claim.runs)) if claim is not None and claim.runs else None
                in_flight = (planned, committer.submit(store.commit, planned.packed)) if planned is not None else None
                planned = processor.apply(reading, report) if reading is not None else None
                if in_flight is not None:
                    _settle(runtime, in_flight, report)
                if planned is None:
                    break
        except Exception:
            # Redis failed mid-turn: give the runs this turn holds back to the ready set, so the next
            # worker takes them at once rather than when their timers fall due (best effort: if
            # Redis is still down, the timers do it)
            with contextlib.suppress(Exception):
                store.make_ready(claimed)
            raise
    if claim is None and store.claim_ready(0, wake_consumed=False).wake_wanted:  # out of time: the rest gets a job
        runtime.publisher.wake()
    return report


def _settle(runtime: DrainParts, in_flight: InFlight, report: BatchReport) -> None:
    """Wait for a claim's commits; drain again, at once, the runs that need it."""
    planned, accepted = in_flight
    again = runtime.processor.settle(planned, accepted.result(), report)
    if again:
        report.add(runtime.processor.drain(again))
