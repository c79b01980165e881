"""Deadlines are decided by their instants, never by when a sweep ran (docs/design.md, "Deadlines
and timers"): any schedule of sweeps — at the exact instants, late, batched, early, none until
the end — gives the same final state and the same stamps, and a producer's clock cannot fire a
deadline before Redis's clock reaches it.
"""

import json
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from statemachine import Incoming, Origin, RunState, apply_event, parse_event
from statemachine.deadlines import fire_deadlines, next_due
from statemachine.models import Tombstone
from statemachine.policy import Policy
from tests.support.applykit import SECOND, T0

POLICY = Policy(default_run_timeout=None)
END = T0 + 400 * SECOND  # after every deadline and event below

Timed = tuple[int, dict[str, Any]]  # (ms, the event as JSON)


def _event(at: int, n: int, kind: str, step_id: str | None = None, **data: Any) -> Timed:
    body: dict[str, Any] = {"id": f"e{n}", "type": kind, "run_id": "r1", "occurred_at": at / 1000}
    if step_id is not None:
        body["step_id"] = step_id
    if data:
        body["data"] = data
    return at, body


@st.composite
def timelines(draw: st.DrawFn) -> list[Timed]:
    """A run with a timeout, steps that expire or complete, maybe an end: its events in time order."""
    events = [_event(T0, 0, "run.started", timeout_seconds=draw(st.integers(5, 200)))]
    for n in range(1, draw(st.integers(1, 4)) + 1):
        created = T0 + draw(st.integers(0, 150)) * SECOND
        expires = created + draw(st.integers(1, 150)) * SECOND
        events.append(_event(created, n, "step.created", f"s{n}", expires_at=expires / 1000))
        if draw(st.booleans()):
            done = created + draw(st.integers(1, 200)) * SECOND
            events.append(_event(done, 10 + n, "step.completed", f"s{n}"))
    if draw(st.booleans()):
        events.append(_event(T0 + draw(st.integers(1, 300)) * SECOND, 99, "run.completed"))
    return sorted(events, key=lambda timed: timed[0])


def _apply(state: RunState | Tombstone | None, timed: Timed, now: int) -> RunState | Tombstone | None:
    incoming = Incoming(parse_event(json.dumps(timed[1])), Origin.EVENT)
    return apply_event(state, incoming, now=now, policy=POLICY).state


def _sweep(state: RunState | Tombstone | None, now: int) -> RunState | Tombstone | None:
    if isinstance(state, RunState) and (due := next_due(state)) is not None and due <= now:
        return fire_deadlines(state, now=now, policy=POLICY).state
    return state


def at_exact_instants(events: list[Timed]) -> RunState | Tombstone | None:
    """The reference: each event applied when it happens, each deadline fired at its instant."""
    state: RunState | Tombstone | None = None
    for timed in [*events, (END, {})]:
        while isinstance(state, RunState) and (due := next_due(state)) is not None and due < timed[0]:
            state = fire_deadlines(state, now=due, policy=POLICY).state
        if timed[1]:
            state = _apply(state, timed, timed[0])
    return state


def on_a_schedule(events: list[Timed], sweeps: list[int]) -> RunState | Tombstone | None:
    """Each event applied when it happens, sweeps at the given times (before an event at the same
    time), and one at the end."""
    plan = sorted(
        [*((at, 1, (at, body)) for at, body in events), *((t, 0, None) for t in sweeps)],
        key=lambda item: (item[0], item[1]),
    )
    state: RunState | Tombstone | None = None
    for now, _, timed in plan:
        state = _apply(state, timed, now) if timed is not None else _sweep(state, now)
    return _sweep(state, END)


def _outcome(state: RunState | Tombstone | None) -> Any:
    """The state as stored, and every stamp; what differs between schedules (when it was applied) aside."""
    assert isinstance(state, RunState)
    return state.model_dump(mode="json")


@settings(max_examples=300, deadline=None)
@given(events=timelines(), sweeps=st.lists(st.integers(T0, END), max_size=12))
def test_any_schedule_of_sweeps_gives_the_state_and_stamps_of_sweeps_at_the_exact_instants(
    events: list[Timed], sweeps: list[int]
) -> None:
    assert _outcome(on_a_schedule(events, sweeps)) == _outcome(at_exact_instants(events))


def test_a_step_that_expired_before_its_run_timed_out_is_expired_at_its_own_instant_after_an_outage() -> None:
    events = [
        _event(T0, 0, "run.started", timeout_seconds=60),
        _event(T0 + SECOND, 1, "step.created", "s1", expires_at=(T0 + 10 * SECOND) / 1000),
    ]
    state = None
    for timed in events:
        state = _apply(state, timed, timed[0])
    assert isinstance(state, RunState)
    fired = fire_deadlines(state, now=T0 + 300 * SECOND, policy=POLICY)  # one sweep, long after both
    assert [(t.object, t.to, t.at, t.origin) for t in fired.history] == [
        ("step", "expired", T0 + 10 * SECOND, Origin.DEADLINE),
        ("run", "timeout", T0 + 60 * SECOND, Origin.DEADLINE),
    ]


def test_an_occurred_at_ahead_of_redis_time_never_fires_a_deadline_early() -> None:
    started = _apply(None, _event(T0, 0, "run.started", timeout_seconds=3600), T0)
    two_hours = T0 + 7200 * SECOND
    result = apply_event(
        started,
        Incoming(parse_event(json.dumps(_event(two_hours, 1, "run.completed")[1])), Origin.EVENT),
        now=T0 + SECOND,
        policy=POLICY,
    )
    assert isinstance(result.state, RunState)
    assert (result.state.run.status, result.state.run.completed_at) == ("completed", T0 + SECOND)
    assert result.clock_skewed


def test_an_occurred_at_within_the_tolerance_is_kept_and_fires_nothing_redis_has_not_reached() -> None:
    started = _apply(None, _event(T0, 0, "run.started", timeout_seconds=10), T0)
    ahead = T0 + 12 * SECOND  # past the timeout by the producer's clock, 3 s ahead of Redis's
    result = apply_event(
        started,
        Incoming(parse_event(json.dumps(_event(ahead, 1, "run.completed")[1])), Origin.EVENT),
        now=T0 + 9 * SECOND,
        policy=POLICY,
    )
    assert isinstance(result.state, RunState)
    assert (result.state.run.status, result.state.run.completed_at, result.clock_skewed) == ("completed", ahead, False)
