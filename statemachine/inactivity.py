"""Inactivity: a running run that hears nothing for `inactivity_timeout_seconds` times out.

Any event a worker receives for the run counts as a sign of life — applied, stale or a
duplicate (a retrying producer is alive), and `run.heartbeat`, which does nothing else. The
silence is measured from the later of the event's `occurred_at` (never after `now`, Redis's
time) and its arrival, so a backlog in runstate's own queue never kills a live run. While
the run waits the clock is paused (`Run.inactive_at` is None); `run.resumed` restarts it.

The deadline moves with every event, but the run's timer entry does not: the run keeps
`inactivity_check_at`, the instant its timer looks at the silence, and events leave it where
it is while it is more than half a timeout away. A check that comes due on a run that was
heard from meanwhile finds nothing to fire and moves on to the new deadline (`arm`).
"""

from statemachine.models import Run, evolve
from statemachine.status import RunStatus

INACTIVITY = "inactivity"  # the note on the history record of a timeout for silence
KIND = "inactivity_timeout"  # its kind in `runstate deadlines`


def sign_of_life(occurred_at: int | None, arrived_at: int | None, now: int) -> int:
    """When an event shows its run alive (ms): the later of when it occurred (clamped to `now`)
    and when it reached runstate (`now` when unknown)."""
    arrived = now if arrived_at is None else min(arrived_at, now)
    if occurred_at is None:
        return arrived
    return max(min(occurred_at, now), arrived)


def touched(run: Run, instant: int | None) -> Run:
    """The run with its clock moved to `instant` (None: no sign of life): forward only, and only
    while it is running with an inactivity timeout (a waiting run's clock restarts when it
    resumes; the others keep no clock, so they pay nothing)."""
    if instant is None or run.inactivity_timeout_seconds is None or run.status is not RunStatus.RUNNING:
        return run
    if run.active_at is not None and run.active_at >= instant:
        return run
    return evolve(run, {"active_at": instant})


def arm(run: Run, now: int) -> Run:
    """The run with the instant its timer next looks at the silence: kept while it is still
    ahead, not after the deadline and not due soon; else the deadline itself."""
    due, seconds = run.inactive_at(), run.inactivity_timeout_seconds
    check = run.inactivity_check_at
    if due is None or seconds is None:
        wanted = None
    elif check is not None and now < check <= due and (check - now) * 2 > seconds * 1000:
        wanted = check
    else:
        wanted = due
    return run if wanted == check else evolve(run, {"inactivity_check_at": wanted})


def silence(run: Run) -> str:
    """The timeout's message: it names the silence."""
    seconds = run.inactivity_timeout_seconds
    return f"no event for {seconds:g} s"
