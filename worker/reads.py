"""Reads in the users' shapes: what `show`, `steps`, `runs`, `history`, `rejected` and `stats` print.

A run is (account, run id): `resolve` finds the run a run id alone names, as `publish` does."""

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
from worker.store.keys import RunRef
from worker.store.owners import choose
from worker.store.runs import Store


class NotFound(LookupError):
    """Raised when an id (a run's, a step's; the CLI's subscriptions and deliveries too) names
    nothing stored; the message names the id."""

    def __init__(self, what: str) -> None:
        super().__init__(f"{what} not found")


class Deleted(NotFound):
    """Raised when the run was deleted (`delete run`, DELETE /v1/runs/{id}): not just missing."""

    def __init__(self, run: RunRef) -> None:
        LookupError.__init__(self, f"{_named(run)} was deleted")


def resolve(store: Store, run_id: str, account: str | None = None) -> RunRef:
    """The run `run_id` names: `account`'s, else the one stored run of that id, else the one
    deleted run of that id (whose reads then raise Deleted). Raises NotFound when there is none,
    `owners.AmbiguousRun` (naming the accounts) when several accounts have one."""
    if account is not None:
        return keys.ref(account, run_id)
    owner = choose(run_id, store.holding(run_id)) or choose(run_id, _deleted_by(store, run_id))
    if owner is None:
        raise NotFound(f"run {run_id!r}")
    return keys.ref(owner, run_id)


def _deleted_by(store: Store, run_id: str) -> set[str]:
    """The accounts whose run of this id was deleted (while its tombstone says so)."""
    return {a for a in store.owners([run_id])[run_id] if was_deleted(store.redis, keys.ref(a, run_id))}


def _named(run: RunRef) -> str:
    account, run_id = keys.parts(run)
    return f"run {run_id!r} of account {account!r}"


def missing(store: Store, run: RunRef) -> NotFound:
    """What to raise for a run that is not stored: Deleted when its tombstone says so."""
    return Deleted(run) if was_deleted(store.redis, run) else NotFound(_named(run))


def _state(store: Store, run: RunRef) -> RunState:
    state = store.get(run)
    if state is None:
        raise missing(store, run)
    return state


def run(store: Store, ref: RunRef, fmt: Format = Format.NATIVE) -> dict[str, Any]:
    return render_run(_state(store, ref), fmt)


def step(store: Store, run: RunRef, step_id: str, fmt: Format = Format.NATIVE) -> dict[str, Any]:
    state = _state(store, run)
    found = state.steps.get(step_id)
    if found is None:
        raise NotFound(f"step {step_id!r} of {_named(run)}")
    return render_step(found, state.run, fmt)


def steps(store: Store, run: RunRef, fmt: Format = Format.NATIVE) -> list[dict[str, Any]]:
    state = _state(store, run)
    return [render_step(s, state.run, fmt) for s in state.steps.values()]


def runs(
    store: Store, status: str | None = None, fmt: Format = Format.NATIVE, account: str | None = None
) -> Iterator[dict[str, Any]]:
    for state in store.runs(account=account):
        if status is None or state.run.status == status:
            yield render_run(state, fmt)


def history(store: Store, run: RunRef) -> list[dict[str, Any]]:
    entries = store.history(run)
    if not entries:
        _state(store, run)  # no history at all: say so if there is no run either
    return [render_transition(t) for t in entries]


def deadlines(store: Store, limit: int = 20) -> list[dict[str, Any]]:
    """The next `limit` deadlines of open runs and steps: what, which kind, when, and in how long."""
    now = store.now_ms()
    found: list[Deadline] = []
    for member, due in store.timers():
        if len(found) >= limit and due > found[limit - 1].due:
            break  # every later timer is due after the deadlines already found
        is_run = member.startswith(keys.RUN_TIMER)
        state = store.document(RunRef(member.removeprefix(keys.RUN_TIMER))) if is_run else None  # open steps suffice
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
