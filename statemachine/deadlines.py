"""Which deadlines a run and its steps have, and which is next (docs/design.md, "Deadlines and timers")."""

from dataclasses import dataclass

from statemachine.events import RunPlain
from statemachine.inactivity import KIND
from statemachine.incoming import DEFAULT_POLICY, Incoming, Result
from statemachine.models import RunState
from statemachine.policy import Policy
from statemachine.status import RUN_TERMINAL, ObjectKind, Origin, Outcome, RunStatus, StepStatus
from statemachine.work import Work


@dataclass(frozen=True, slots=True, order=True)
class Deadline:
    due: int  # ms
    object: ObjectKind
    id: str
    run_id: str
    kind: str  # "run_timeout", "waiting_timeout", "inactivity_timeout" or "step_expiry"


def upcoming(state: RunState) -> list[Deadline]:
    """Every deadline still ahead of this run and its open steps, soonest first."""
    found = _fixed(state)
    quiet = state.run.inactive_at()
    if quiet is not None:
        found.append(Deadline(quiet, ObjectKind.RUN, state.run.id, state.run.id, KIND))
    return sorted(found)


def _fixed(state: RunState) -> list[Deadline]:
    """The deadlines that events do not move: the run's timeouts and its steps' expiries."""
    run = state.run
    if run.status in RUN_TERMINAL:
        return []
    found = []
    if run.timeout_at is not None:
        found.append(Deadline(run.timeout_at, ObjectKind.RUN, run.id, run.id, "run_timeout"))
    if run.status is RunStatus.WAITING and run.waiting_until is not None:
        found.append(Deadline(run.waiting_until, ObjectKind.RUN, run.id, run.id, "waiting_timeout"))
    for step in state.steps.values():
        if step.status is StepStatus.IN_PROGRESS and step.expires_at is not None:
            found.append(Deadline(step.expires_at, ObjectKind.STEP, step.id, run.id, "step_expiry"))
    return found


def next_due(state: RunState) -> int | None:
    """When this run next needs a worker for a deadline, or None: for the silence, the instant
    its timer checks it (`inactivity.arm`), never after the deadline itself."""
    dues = [d.due for d in _fixed(state)]
    quiet = state.run.inactive_at()
    if quiet is not None:
        check = state.run.inactivity_check_at
        dues.append(quiet if check is None else min(check, quiet))
    return min(dues, default=None)


def fire_deadlines(current: RunState, *, now: int, policy: Policy = DEFAULT_POLICY) -> Result:
    """Fire what is due at `now` (ms) through the one door, in the order of the deadlines'
    instants, each stamped with its own: steps' expiries, and the run's timeout (closing the steps
    still open then as expired). Never early; nothing fires for an object already terminal.
    APPLIED when something fired, else STALE."""
    run = current.run
    tick = Incoming(RunPlain(id="deadline", type="run.timed_out", run_id=run.id), Origin.DEADLINE)
    work = Work(current, tick, now, policy)
    work.fire_deadlines_before(now + 1, alive=now + 1)  # due at or before now
    return work.result(Outcome.APPLIED if work.history else Outcome.STALE)
