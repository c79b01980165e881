"""Properties of apply_event over random event streams: retries, duplicates, reordering, late events.

Events are folded as a store would fold them: one state and one set of remembered ids per run,
an id remembered when the result says so. Every result and every state along the way is checked.
"""

import json
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from applykit import SECOND, T0
from hypothesis import given, settings
from hypothesis import strategies as st

from statemachine import (
    Event,
    EventType,
    Incoming,
    Origin,
    Outcome,
    Policy,
    RunState,
    Transition,
    apply_event,
    parse_event,
)
from statemachine.events import StepCompleted, StepFailed, Usage
from statemachine.lifecycle import RUN, STEP, Lifecycle, legal_target
from statemachine.models import Totals, totals
from statemachine.status import ObjectKind, RunStatus, StepStatus
from statemachine.timefmt import rfc3339

RUN_IDS = ("run_a", "run_b")
STEP_IDS = ("step_1", "step_2", "step_3")
LIFECYCLES = {ObjectKind.RUN: RUN, ObjectKind.STEP: STEP}
REASONS = {"illegal_transition", "account_mismatch"}

maybe_time = st.none() | st.integers(0, 240).map(lambda s: T0 + s * SECOND)
usage = st.fixed_dictionaries(
    {},
    optional={
        "prompt_tokens": st.integers(0, 10**6),
        "completion_tokens": st.integers(0, 10**6),
        "cached_tokens": st.integers(0, 10**6),
        "reasoning_tokens": st.integers(0, 10**6),
    },
)
DATA = {
    EventType.RUN_STARTED: st.fixed_dictionaries(
        {},
        optional={
            "timeout_seconds": st.sampled_from([None, 0, 30, 90]),
            "waiting_timeout_seconds": st.sampled_from([None, 10]),
            "account_id": st.sampled_from(["acct_1", "acct_2"]),
            "runnable_id": st.just("rbl_1"),
        },
    ),
    EventType.RUN_WAITING: st.fixed_dictionaries({}, optional={"waiting_timeout_seconds": st.sampled_from([None, 20])}),
    EventType.STEP_CREATED: st.fixed_dictionaries({}, optional={"expires_at": maybe_time.filter(bool).map(rfc3339)}),
    EventType.STEP_COMPLETED: st.fixed_dictionaries(
        {},
        optional={
            "usage": usage,
            # micro-dollars written as JSON numbers: sums of their floats would not be exact
            "cost_usd": st.integers(0, 10**7).map(lambda micros: micros / 10**6),
            "model": st.just("gpt-4o"),
        },
    ),
}
DATA[EventType.STEP_FAILED] = DATA[EventType.STEP_COMPLETED]


@dataclass(frozen=True)
class Delivery:
    raw: dict[str, Any]  # the event as published
    origin: Origin
    account: str | None  # the API token's account, when it came through the API

    def event(self) -> Event:
        return parse_event(json.dumps(self.raw))


@st.composite
def fresh_delivery(draw: st.DrawFn, number: int) -> Delivery:
    event_type = draw(st.sampled_from(list(EventType)))
    raw: dict[str, Any] = {"id": f"evt_{number}", "type": event_type.value, "run_id": draw(st.sampled_from(RUN_IDS))}
    if event_type.kind is ObjectKind.STEP:
        raw["step_id"] = draw(st.sampled_from(STEP_IDS))
    if (at := draw(maybe_time)) is not None:
        raw["occurred_at"] = rfc3339(at)
    if draw(st.integers(0, 9)) == 0:
        raw["sequence"] = draw(st.integers(1, 12))
    if event_type in DATA:
        raw["data"] = draw(DATA[event_type])
    origin = Origin.API if event_type is EventType.RUN_CANCELLED and draw(st.booleans()) else Origin.EVENT
    account = draw(st.sampled_from([None] * 8 + ["acct_1", "acct_2"]))
    return Delivery(raw, origin, account)


@st.composite
def streams(draw: st.DrawFn) -> list[Delivery]:
    """Fresh events, exact re-deliveries (same id) and producer retries (same content, a new id)."""
    stream: list[Delivery] = []
    for number in range(draw(st.integers(1, 40))):
        kind = draw(st.sampled_from(["fresh", "fresh", "fresh", "resend", "retry"])) if stream else "fresh"
        if kind == "fresh":
            stream.append(draw(fresh_delivery(number)))
            continue
        earlier = draw(st.sampled_from(stream))
        if kind == "retry":
            earlier = Delivery({**earlier.raw, "id": f"evt_{number}"}, earlier.origin, earlier.account)
        stream.append(earlier)
    return stream


policies = st.builds(
    Policy,
    default_account=st.just("acct_1"),
    default_run_timeout=st.sampled_from([None, 60, 150]),
    default_waiting_timeout=st.sampled_from([None, 30]),
    default_step_timeout=st.sampled_from([None, 45]),
)


@dataclass
class Store:
    """What a store keeps per run, and what the checks remember between events."""

    policy: Policy
    states: dict[str, RunState] = field(default_factory=dict)
    seen: dict[str, set[str]] = field(default_factory=dict)
    history: dict[str, list[Transition]] = field(default_factory=dict)
    # usage and cost each step was given, and by which event: the totals, computed apart
    usage_from: dict[tuple[str, str], Usage] = field(default_factory=dict)
    cost_from: dict[tuple[str, str], Decimal] = field(default_factory=dict)

    def deliver(self, delivery: Delivery, now: int) -> None:
        event = delivery.event()
        run_id = event.run_id
        before = self.states.get(run_id)
        seen = self.seen.setdefault(run_id, set())

        result = apply_event(before, Incoming(event, delivery.origin, delivery.account), now=now, seen=seen, policy=self.policy)

        if result.outcome is Outcome.REJECTED:
            assert result.rejection is not None
            assert result.rejection.code in REASONS
            assert str(result.rejection).startswith(f"{result.rejection.code}: ")
            assert str(result.rejection) != f"{result.rejection.code}: "
        else:
            assert result.rejection is None
        if result.outcome is Outcome.DUPLICATE:
            assert event.id in seen
        if result.outcome is Outcome.DUPLICATE or not result.remember_id:
            assert (result.state, result.history) == (before, ())
        if result.state is None:
            return
        after = result.state
        assert isinstance(after, RunState)
        previous_len = before.history_len if before is not None else 0
        assert [t.n for t in result.history] == list(range(previous_len + 1, previous_len + len(result.history) + 1))
        assert after.history_len == previous_len + len(result.history)
        assert result.late_usage == any(t.note == "late_usage" for t in result.history)
        check_outcome_matches_history(result.outcome, result.history, event, delivery.origin)
        check_final(before, after)
        check_stamps(after)
        self.check_usage(before, after, event, result.outcome, result.late_usage)

        self.states[run_id] = after
        self.history.setdefault(run_id, []).extend(result.history)
        if result.remember_id:
            seen.add(event.id)

    def check_usage(self, before: RunState | None, after: RunState, event: Event, outcome: Outcome, late: bool) -> None:
        """Usage and cost are set once per step, by an event for that step, and never change again."""
        for step_id, step in after.steps.items():
            key = (after.run.id, step_id)
            old = before.steps.get(step_id) if before is not None else None
            for name, given in (("usage", self.usage_from), ("cost_usd", self.cost_from)):
                was, now = getattr(old, name, None), getattr(step, name)
                if was is not None:
                    assert now == was, f"{name} of {step_id} changed"
                elif now is not None:
                    assert isinstance(event, StepCompleted | StepFailed)
                    assert event.step_id == step_id
                    assert now == getattr(event.data, name)
                    assert outcome is Outcome.APPLIED or late
                    assert key not in given
                    given[key] = now

    def independent_totals(self, run_id: str) -> Totals:
        usages = [u for (run, _), u in self.usage_from.items() if run == run_id]
        costs = [c for (run, _), c in self.cost_from.items() if run == run_id]
        return Totals(
            prompt_tokens=sum(u.prompt_tokens for u in usages),
            completion_tokens=sum(u.completion_tokens for u in usages),
            cached_tokens=sum(u.cached_tokens for u in usages),
            reasoning_tokens=sum(u.reasoning_tokens for u in usages),
            cost_usd=sum(costs, Decimal(0)),
        )


def check_outcome_matches_history(outcome: Outcome, history: tuple[Transition, ...], event: Event, origin: Origin) -> None:
    """Applied: the event moved something. Otherwise only deadlines and late usage leave records."""
    moved_by_event = [t for t in history if t.event_id == event.id and t.origin is origin and t.note is None]
    if outcome is Outcome.APPLIED:
        assert moved_by_event
        return
    assert moved_by_event == []
    for t in history:
        deadline = t.event_id is None and t.origin in (Origin.DEADLINE, Origin.CASCADE)
        late_step = t.from_ is None and t.origin is Origin.CASCADE and t.event_id == event.id
        assert deadline or late_step or t.note == "late_usage", t


def check_final(before: RunState | None, after: RunState) -> None:
    """Terminal states are final, and no step disappears."""
    if before is None:
        return
    assert after.run.id == before.run.id
    if before.run.status in RUN.terminal:
        assert after.run.status == before.run.status
    assert set(before.steps) <= set(after.steps)
    for step_id, step in before.steps.items():
        if step.status in STEP.terminal:
            assert after.steps[step_id].status == step.status


def check_stamps(state: RunState) -> None:
    run = state.run
    if run.status in RUN.terminal:  # a run that ended closed its steps in the same update
        assert all(step.status in STEP.terminal for step in state.steps.values())
    assert (run.completed_at is not None) == (run.status in RUN.terminal)
    assert (run.failed_at is not None) == (run.status is RunStatus.FAILED)
    assert (run.cancelled_at is not None) == (run.status is RunStatus.CANCELLED)
    assert all(stamp >= run.created_at for stamp in (run.completed_at, run.failed_at, run.cancelled_at) if stamp)
    for step in state.steps.values():
        present = {
            status
            for status in (StepStatus.COMPLETED, StepStatus.FAILED, StepStatus.CANCELLED, StepStatus.EXPIRED)
            if getattr(step, f"{status}_at") is not None
        }
        assert present == ({step.status} if step.status in STEP.terminal else set())
        if step.status in STEP.terminal:
            assert getattr(step, f"{step.status}_at") >= step.created_at


def is_edge(lifecycle: Lifecycle, before: str, after: str) -> bool:
    return any(legal_target(lifecycle.kind, trigger, before) == after for trigger in {e.trigger for e in lifecycle.edges})


def check_history(history: list[Transition], state: RunState) -> None:
    """n is 1..k; each record starts where its object's previous one ended; every move is an edge."""
    assert [t.n for t in history] == list(range(1, len(history) + 1))
    assert len(history) == state.history_len
    last: dict[tuple[ObjectKind, str], str] = {}
    for t in history:
        lifecycle = LIFECYCLES[t.object]
        assert t.from_ == last.get((t.object, t.id))
        if t.from_ is None:  # a creation: into the initial status, or a step first heard of after its run ended
            assert t.to == lifecycle.initial or (t.object is ObjectKind.STEP and t.origin is Origin.CASCADE)
        elif t.note == "late_usage":
            assert t.to == t.from_ and t.to in lifecycle.terminal
        else:
            assert is_edge(lifecycle, t.from_, t.to), t
        last[(t.object, t.id)] = t.to
    assert last.pop((ObjectKind.RUN, state.run.id)) == state.run.status
    assert last == {(ObjectKind.STEP, step_id): step.status for step_id, step in state.steps.items()}


@settings(max_examples=150, deadline=None)
@given(stream=streams(), policy=policies, gaps=st.lists(st.integers(0, 30), min_size=40, max_size=40))
def test_any_stream_keeps_every_rule(stream: list[Delivery], policy: Policy, gaps: list[int]) -> None:
    store = Store(policy)
    now = T0
    for delivery, gap in zip(stream, gaps, strict=False):
        now += gap * SECOND
        store.deliver(delivery, now)

    for run_id, state in store.states.items():
        check_history(store.history[run_id], state)
        assert totals(state.steps) == store.independent_totals(run_id)

    # every event delivered again, later: nothing changes, nothing is counted twice
    settled = dict(store.states)
    for delivery in stream:
        store.deliver(delivery, now + 3600 * SECOND)
    assert store.states == settled
