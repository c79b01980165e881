"""Checks that hold for every stored run, whatever happened to the workers that wrote it."""

from statemachine.lifecycle import RUN, STEP
from statemachine.models import RunState, Transition
from statemachine.status import RunStatus, StepStatus

STEP_STAMPS = {
    StepStatus.COMPLETED: "completed_at",
    StepStatus.FAILED: "failed_at",
    StepStatus.CANCELLED: "cancelled_at",
    StepStatus.EXPIRED: "expired_at",
}


def stamp_problems(state: RunState) -> list[str]:
    problems = []
    run = state.run
    terminal = run.status in RUN.terminal
    if (run.completed_at is not None) != terminal:
        problems.append(f"run {run.id}: completed_at {run.completed_at} with status {run.status}")
    if (run.failed_at is not None) != (run.status is RunStatus.FAILED):
        problems.append(f"run {run.id}: failed_at {run.failed_at} with status {run.status}")
    for step in state.steps.values():
        stamped = {name for name in STEP_STAMPS.values() if getattr(step, name) is not None}
        expected = {STEP_STAMPS[step.status]} if step.status in STEP.terminal else set()
        if stamped != expected:
            problems.append(f"step {step.id}: stamps {sorted(stamped)} with status {step.status}")
        if terminal and step.status is StepStatus.IN_PROGRESS:
            problems.append(f"step {step.id}: in progress in a {run.status} run")
    return problems


def history_problems(state: RunState, history: list[Transition]) -> list[str]:
    """The history is numbered 1..n, chains from/to per object and ends in the stored statuses."""
    problems = []
    if [t.n for t in history] != list(range(1, len(history) + 1)):
        problems.append(f"run {state.run.id}: history numbers {[t.n for t in history][:20]}…")
    if len(history) != state.history_len:
        problems.append(f"run {state.run.id}: {len(history)} history records, document says {state.history_len}")
    last: dict[tuple[str, str], str] = {}
    for t in history:
        key = (t.object.value, t.id)
        if last.get(key) != t.from_:
            problems.append(f"{key}: record {t.n} goes from {t.from_}, last was {last.get(key)}")
        last[key] = t.to
    if last.get(("run", state.run.id)) != state.run.status:
        problems.append(f"run {state.run.id}: history ends in {last.get(('run', state.run.id))}")
    for step in state.steps.values():
        if last.get(("step", step.id)) != step.status:
            problems.append(f"step {step.id}: history ends in {last.get(('step', step.id))}, stored {step.status}")
    return problems
