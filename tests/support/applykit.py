"""Small builders shared by the apply_event tests: events go in as JSON, through parse_event."""

import itertools
import json
from collections.abc import Iterable
from typing import Any

from statemachine import Event, Incoming, Origin, Policy, Result, RunState, Transition, apply_event, parse_event
from statemachine.models import Tombstone
from statemachine.timefmt import parse_time, rfc3339

T0 = parse_time("2026-11-25T10:00:00Z")  # ms; every test's clock starts here
SECOND = 1000
# No default run timeout, so that only the tests about deadlines meet one.
POLICY = Policy(default_run_timeout=None)

_ids = itertools.count(1)


def event(
    type_: str,
    run_id: str = "run_1",
    step_id: str | None = None,
    *,
    at: int | None = None,
    id_: str | None = None,
    sequence: int | None = None,
    data: dict[str, Any] | None = None,
) -> Event:
    """One event, spelled as a producer would send it (`at` in ms, rendered as RFC 3339)."""
    raw: dict[str, Any] = {"id": id_ or f"evt_{next(_ids)}", "type": type_, "run_id": run_id}
    if step_id is not None:
        raw["step_id"] = step_id
    if at is not None:
        raw["occurred_at"] = rfc3339(at)
    if sequence is not None:
        raw["sequence"] = sequence
    if data is not None:
        raw["data"] = data
    return parse_event(json.dumps(raw))


def apply(
    state: RunState | Tombstone | None,
    ev: Event,
    *,
    now: int | None = None,
    seen: Iterable[str] = (),
    policy: Policy = POLICY,
    origin: Origin = Origin.EVENT,
    account: str | None = None,
) -> Result:
    """apply_event with the test defaults; `now` defaults to the event's own time (or T0)."""
    if now is None:
        now = ev.occurred_at if ev.occurred_at is not None else T0
    return apply_event(state, Incoming(ev, origin, account), now=now, seen=frozenset(seen), policy=policy)


def fold(events: Iterable[Event], state: RunState | None = None, *, policy: Policy = POLICY) -> RunState:
    """Apply events in order as a store would (remembering ids), and insist each one applied."""
    seen: set[str] = set()
    for ev in events:
        result = apply(state, ev, seen=seen, policy=policy)
        assert result.outcome == "applied", (ev, result)
        assert isinstance(result.state, RunState)
        state = result.state
        if result.remember_id:
            seen.add(ev.id)
    assert state is not None
    return state


def path(result: Result) -> list[tuple[str, str, str | None, str]]:
    """The history as (object, id, from, to), the part most tests read."""
    return [(t.object.value, t.id, t.from_, t.to) for t in result.history]


def record(n, kind, object_id, before, after, *, at, applied_at, event_id, event_type, origin, note=None):
    return Transition(
        n=n,
        object=kind,
        id=object_id,
        run_id="run_1",
        from_=before,
        to=after,
        event_id=event_id,
        event_type=event_type,
        origin=origin,
        at=at,
        applied_at=applied_at,
        note=note,
    )
