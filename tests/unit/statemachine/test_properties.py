"""Properties of apply_event over random event streams: retries, duplicates, reordering, late events.

Events are folded as a store would fold them: one state and one set of remembered ids per run,
an id remembered when the result says so. Every result and every state along the way is checked.
"""

import json
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

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
from statemachine.lifecycle import RUN, STEP, Lifecycle, legal_target
from statemachine.models import Totals, totals
from statemachine.status import ObjectKind, RunStatus, StepStatus
from statemachine.timefmt import rfc3339
from tests.support.applykit import SECOND, T0

RUN_IDS = ("run_a", "run_b")
STEP_IDS = ("step_1", "step_2", "step_3")
LIFECYCLES = {ObjectKind.RUN: RUN, ObjectKind.STEP: STEP}
REASONS = {"illegal_transition", "account_mismatch"}
TOKEN_FIELDS = ("prompt_tokens", "completion_tokens", "cached_tokens", "reasoning_tokens")

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
def streams(draw: st.DrawFn) -> list[tuple[int, Delivery]]:
    """Fresh events, exact re-deliveries (same id) and producer retries (same content, a new id),
    each after a pause of 0–30 s on the worker's clock."""
    stream: list[tuple[int, Delivery]] = []
    for number in range(draw(st.integers(1, 40))):
        kind = draw(st.sampled_from(["fresh", "fresh", "fresh", "resend", "retry"])) if stream else "fresh"
        if kind == "fresh":
            delivery = draw(fresh_delivery(number))
        else:
            delivery = draw(st.sampled_from(stream))[1]
            if kind == "retry":
                delivery = Delivery({**delivery.raw, "id": f"evt_{number}"}, delivery.origin, delivery.account)
        stream.append((draw(st.integers(0, 30)) * SECOND, delivery))
    return stream


policies = st.builds(
    Policy,
    default_account=st.just("acct_1"),
    default_run_timeout=st.sampled_from([None, 60, 150]),
    default_waiting_timeout=st.sampled_from([None, 30]),
    default_step_timeout=st.sampled_from([None, 45]),
    default_inactivity_timeout=st.sampled_from([None, 20]),
)


@dataclass
class Store:
    """What a store keeps per run, and what the checks remember between events."""

    policy: Policy
    states: dict[str, RunState] = field(default_factory=dict)
    seen: dict[str, set[str]] = field(default_factory=dict)
    history: dict[str, list[Transition]] = field(default_factory=dict)
    # the usage and cost each step took, read from the published JSON: the totals, computed apart
    tokens_of: dict[tuple[str, str], dict[str, int]] = field(default_factory=dict)
    micros_of: dict[tuple[str, str], int] = field(default_factory=dict)

    def deliver(self, delivery: Delivery, now: int) -> None:
        event = delivery.event()
        run_id = event.run_id
        before = self.states.get(run_id)
        seen = self.seen.setdefault(run_id, set())

        result = apply_event(
            before, Incoming(event, delivery.origin, delivery.account), now=now, seen=seen, policy=self.policy
        )

        if result.outcome is Outcome.REJECTED:
            assert result.rejection is not None
            assert result.rejection.code in REASONS
            assert str(result.rejection).startswith(f"{result.rejection.code}: ")
            assert str(result.rejection) != f"{result.rejection.code}: "
        else:
            assert result.rejection is None
        if result.outcome is Outcome.DUPLICATE:
            assert event.id in seen
        if result.outcome is Outcome.DUPLICATE or event.event_type is EventType.RUN_HEARTBEAT:
            # a sign of life: only the clock moves, once a silence (for a heartbeat, any deadline)
            # already past has fired
            heartbeat = event.event_type is EventType.RUN_HEARTBEAT and result.outcome is not Outcome.DUPLICATE
            assert only_the_clock_moved(before, result.state, result.history, any_deadline=heartbeat)
        elif not result.remember_id:
            assert (result.state, result.history) == (before, ())
        if result.state is None:
            return
        after = result.state
        assert isinstance(after, RunState)
        named = delivery.raw.get("data", {}).get("account_id") if event.type == "run.started" else None
        if result.outcome is not Outcome.REJECTED and after != before:  # it never acts on another account's run
            assert after.run.account_id == (named or delivery.account or after.run.account_id)
            assert delivery.account in (None, after.run.account_id)
        previous_len = before.history_len if before is not None else 0
        assert [t.n for t in result.history] == list(range(previous_len + 1, previous_len + len(result.history) + 1))
        assert after.history_len == previous_len + len(result.history)
        assert result.late_usage == any(t.note == "late_usage" for t in result.history)
        check_outcome_matches_history(result.outcome, result.history, event, delivery.origin)
        check_final(before, after)
        check_stamps(after)
        self.check_usage(before, after, delivery, result.outcome, result.late_usage)

        self.states[run_id] = after
        self.history.setdefault(run_id, []).extend(result.history)
        if result.remember_id:
            seen.add(event.id)

    def check_usage(
        self, before: RunState | None, after: RunState, delivery: Delivery, outcome: Outcome, late: bool
    ) -> None:
        """Usage and cost are set once per step, by an event for that step, and never change again."""
        data = delivery.raw.get("data", {})
        for step_id, step in after.steps.items():
            key = (after.run.id, step_id)
            old = before.steps.get(step_id) if before is not None else None
            if old is not None and old.usage is not None:
                assert step.usage == old.usage, f"usage of {step_id} changed"
            elif step.usage is not None:
                assert delivery.raw["type"] in ("step.completed", "step.failed")
                assert delivery.raw["step_id"] == step_id
                assert outcome is Outcome.APPLIED or late
                assert key not in self.tokens_of
                self.tokens_of[key] = {name: data["usage"].get(name, 0) for name in TOKEN_FIELDS}
                assert step.usage.model_dump() == self.tokens_of[key]
            if old is not None and old.cost_usd is not None:
                assert step.cost_usd == old.cost_usd, f"cost of {step_id} changed"
            elif step.cost_usd is not None:
                assert delivery.raw["step_id"] == step_id
                assert outcome is Outcome.APPLIED or late
                assert key not in self.micros_of
                self.micros_of[key] = round(data["cost_usd"] * 10**6)
                assert step.cost_usd == Decimal(self.micros_of[key]).scaleb(-6)

    def independent_totals(self, run_id: str) -> Totals:
        tokens = [counts for (run, _), counts in self.tokens_of.items() if run == run_id]
        micros = sum(m for (run, _), m in self.micros_of.items() if run == run_id)
        return Totals(
            **{name: sum(t[name] for t in tokens) for name in TOKEN_FIELDS}, cost_usd=Decimal(micros).scaleb(-6)
        )


def check_outcome_matches_history(
    outcome: Outcome, history: tuple[Transition, ...], event: Event, origin: Origin
) -> None:
    """Applied: the event moved something. Otherwise only deadlines and late usage leave records."""
    moved_by_event = [t for t in history if t.event_id == event.id and t.origin is origin and t.note is None]
    if outcome is Outcome.APPLIED:
        assert moved_by_event or event.event_type is EventType.RUN_HEARTBEAT  # it moves only the clock
        return
    assert moved_by_event == []
    for t in history:
        deadline = t.event_id is None and t.origin in (Origin.DEADLINE, Origin.CASCADE)
        late_step = t.from_ is None and t.origin is Origin.CASCADE and t.event_id == event.id
        assert deadline or late_step or t.note == "late_usage", t


def only_the_clock_moved(
    before: RunState | None, after: object, history: tuple[Transition, ...], *, any_deadline: bool = False
) -> bool:
    """Nothing changed but the inactivity clock (and a heartbeat's sequence), or the only records
    are the run's deadline that had already passed and the steps it closed; with `any_deadline`
    (a heartbeat, which fires every deadline already past, as any event does) also steps expired."""
    if history and any_deadline:
        return all(t.origin in (Origin.DEADLINE, Origin.CASCADE) for t in history)
    if history:
        first, *rest = history
        cascades = all(t.origin is Origin.CASCADE for t in rest)
        return (first.origin, first.to) == (Origin.DEADLINE, "timeout") and cascades
    if not isinstance(before, RunState) or not isinstance(after, RunState):
        return after == before
    return _clockless(after) == _clockless(before)


def _clockless(state: RunState) -> RunState:
    run = state.run.model_copy(update={"active_at": None, "inactivity_check_at": None})
    return state.model_copy(update={"run": run, "last_sequence": 0})


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
    return any(
        legal_target(lifecycle.kind, trigger, before) == after for trigger in {e.trigger for e in lifecycle.edges}
    )


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
            assert t.to == t.from_
            assert t.to in lifecycle.terminal
        else:
            assert is_edge(lifecycle, t.from_, t.to), t
        last[(t.object, t.id)] = t.to
    assert last.pop((ObjectKind.RUN, state.run.id)) == state.run.status
    assert last == {(ObjectKind.STEP, step_id): step.status for step_id, step in state.steps.items()}


@settings(max_examples=150, deadline=None)
@given(stream=streams(), policy=policies)
def test_any_stream_keeps_every_rule(stream: list[tuple[int, Delivery]], policy: Policy) -> None:
    store = Store(policy)
    now = T0
    for pause, delivery in stream:
        now += pause
        store.deliver(delivery, now)

    for run_id, state in store.states.items():
        check_history(store.history[run_id], state)
        assert totals(state.steps) == store.independent_totals(run_id)

    # every event the store remembered, delivered again later, changes nothing and counts nothing twice:
    # a duplicate, or an account_mismatch (checked first) when a run.started has since fixed the account.
    # (Events refused for their account are not remembered: once a run.started names the account of an
    # implicitly created run, an event refused before may be accepted, so those are not re-delivered.)
    for _, delivery in stream:
        event = delivery.event()
        if event.id in store.seen.get(event.run_id, ()):
            state, seen = store.states[event.run_id], store.seen[event.run_id]
            incoming = Incoming(event, delivery.origin, delivery.account)
            result = apply_event(state, incoming, now=now + 3600 * SECOND, seen=seen, policy=policy)
            assert only_the_clock_moved(state, result.state, result.history)
            assert result.remember_id is False
            if result.outcome is not Outcome.DUPLICATE:
                assert (result.outcome, result.rejection.code, delivery.account) == (
                    Outcome.REJECTED,
                    "account_mismatch",
                    delivery.account or "a token",
                )
