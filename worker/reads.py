"""Reads in the users' shapes: what `show`, `steps`, `runs`, `history`, `rejected` and `stats` print."""

from collections.abc import Iterator
from typing import Any

from statemachine.deadlines import Deadline, upcoming
from statemachine.dialects import Format, render_run, render_step, render_transition
from statemachine.events import EventType
from statemachine.models import RunState
from statemachine.status import ObjectKind, Outcome
from statemachine.timefmt import rfc3339
from worker.store import keys
from worker.store.deletion import was_deleted
from worker.store.runs import Store


class NotFound(LookupError):
    """Raised when an id (a run's, a step's; the CLI's subscriptions and deliveries too) names
    nothing stored; the message names the id."""

    def __init__(self, what: str) -> None:
        super().__init__(f"{what} not found")


class Deleted(NotFound):
    """Raised when the run was deleted (`delete run`, DELETE /v1/runs/{id}): not just missing."""

    def __init__(self, run_id: str) -> None:
        LookupError.__init__(self, f"run {run_id!r} was deleted")


def _state(store: Store, run_id: str) -> RunState:
    state = store.get(run_id)
    if state is None:
        raise Deleted(run_id) if was_deleted(store.redis, run_id) else NotFound(f"run {run_id!r}")
    return state


def run(store: Store, run_id: str, fmt: Format = Format.NATIVE) -> dict[str, Any]:
    return render_run(_state(store, run_id), fmt)


def step(store: Store, run_id: str, step_id: str, fmt: Format = Format.NATIVE) -> dict[str, Any]:
    state = _state(store, run_id)
    found = state.steps.get(step_id)
    if found is None:
        raise NotFound(f"step {step_id!r} of run {run_id!r}")
    return render_step(found, state.run, fmt)


def steps(store: Store, run_id: str, fmt: Format = Format.NATIVE) -> list[dict[str, Any]]:
    state = _state(store, run_id)
    return [render_step(s, state.run, fmt) for s in state.steps.values()]


def runs(store: Store, status: str | None = None, fmt: Format = Format.NATIVE) -> Iterator[dict[str, Any]]:
    for state in store.runs():
        if status is None or state.run.status == status:
            yield render_run(state, fmt)


def history(store: Store, run_id: str) -> list[dict[str, Any]]:
    entries = store.history(run_id)
    if not entries:
        _state(store, run_id)  # no history at all: say so if there is no run either
    return [render_transition(t) for t in entries]


def deadlines(store: Store, limit: int = 20) -> list[dict[str, Any]]:
    """The next `limit` deadlines of open runs and steps: what, which kind, when, and in how long."""
    now = store.now_ms()
    found: list[Deadline] = []
    prefix = keys.run_timer("")
    for member, due in store.timers():
        if len(found) >= limit and due > found[limit - 1].due:
            break  # every later timer is due after the deadlines already found
        state = store.get(member.removeprefix(prefix)) if member.startswith(prefix) else None
        if state is not None:
            found = sorted([*found, *upcoming(state)])
    return [
        {
            "object": d.object.value,
            "id": d.id,
            "run_id": d.run_id,
            "kind": d.kind,
            "due": rfc3339(d.due),
            "in_seconds": round((d.due - now) / 1000, 3),
        }
        for d in found[:limit]
    ]


def stats(store: Store) -> dict[str, Any]:
    """Counts by outcome, in total, by object and by event type, plus late usage, gaps, clock skew and refused jobs."""
    raw = store.stats()
    by_type = outcomes_by_type(raw)
    by_object = {
        kind.value: {
            outcome.value: sum(counts[outcome.value] for name, counts in by_type.items() if name.startswith(f"{kind}."))
            for outcome in Outcome
        }
        for kind in ObjectKind
    }
    totals = {outcome.value: sum(counts[outcome.value] for counts in by_object.values()) for outcome in Outcome}
    invalid = raw.get("event.rejected", 0)
    totals[Outcome.REJECTED.value] += invalid
    return {
        **totals,
        "late_usage": raw.get("late_usage", 0),
        "deadlines": raw.get("deadlines", 0),
        "inactivity_timeouts": raw.get("inactivity_timeouts", 0),
        "gaps": raw.get("gaps", 0),
        "clock_skew": raw.get("clock_skew", 0),
        "invalid_events": invalid,
        "poisoned_jobs": raw.get("job.poisoned", 0),
        **by_object,
        "by_type": {name: counts for name, counts in by_type.items() if any(counts.values())},
    }


def outcomes_by_type(raw: dict[str, int]) -> dict[str, dict[str, int]]:
    """`{"step.completed": {"applied": 8, "duplicate": 0, ...}, ...}` from the counters' `type:outcome` fields."""
    return {t.value: {o.value: raw.get(f"{t.value}:{o.value}", 0) for o in Outcome} for t in EventType}
