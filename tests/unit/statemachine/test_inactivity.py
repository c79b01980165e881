"""The inactivity rules (issue 18), pure: what is a sign of life, when silence fires, what it
looks like, and how the timer's check instant moves."""

from typing import Any

import pytest

from statemachine import Incoming, Origin, Outcome, Policy, Result, RunState, apply_event
from statemachine.deadlines import fire_deadlines, next_due, upcoming
from statemachine.inactivity import arm, sign_of_life
from statemachine.models import Run, Tombstone
from tests.support.applykit import POLICY, SECOND, T0, apply, event, fold

QUIET = {"inactivity_timeout_seconds": 30}
LIMIT = 30 * SECOND


def started(**data: object) -> RunState:
    return fold([event("run.started", at=T0, data={**QUIET, **data})])


def arrive(state: RunState | None, ev_type: str, *, at: int | None, arrived: int, now: int, **kw: Any) -> Result:
    """An event that reached runstate at `arrived` and is applied at `now`."""
    ev = event(ev_type, at=at, **kw)
    return apply_event(state, Incoming(ev, Origin.EVENT, None, arrived), now=now, policy=POLICY)


@pytest.mark.parametrize(
    ("occurred", "arrived", "now", "alive"),
    [
        (None, 5, 9, 5),  # no occurred_at: its arrival
        (3, 5, 9, 5),  # occurred before it arrived: its arrival
        (7, 5, 9, 7),  # occurred after it arrived (a clock ahead): when it occurred ...
        (12, 5, 9, 9),  # ... but never after Redis's time
        (3, None, 9, 9),  # arrival unknown: now
        (3, 11, 9, 9),  # an arrival stamped ahead of Redis's time is clamped too
    ],
)
def test_a_sign_of_life_is_the_later_of_occurred_at_clamped_and_arrival(
    occurred: int | None, arrived: int | None, now: int, alive: int
) -> None:
    assert sign_of_life(occurred, arrived, now) == alive


def test_run_started_sets_the_timeout_and_starts_the_clock() -> None:
    state = started()
    assert (state.run.inactivity_timeout_seconds, state.run.active_at) == (30, T0)
    assert state.run.inactive_at() == T0 + LIMIT


@pytest.mark.parametrize("seconds", [0, -5, 0.5, None])
def test_zero_negative_fractional_or_null_clears_the_default(seconds: float | None) -> None:
    policy = Policy(default_run_timeout=None, default_inactivity_timeout=60)
    state = fold([event("run.started", at=T0, data={"inactivity_timeout_seconds": seconds})], policy=policy)
    assert (state.run.inactivity_timeout_seconds, state.run.inactive_at()) == (None, None)


def test_the_default_applies_when_run_started_names_none() -> None:
    policy = Policy(default_run_timeout=None, default_inactivity_timeout=60)
    state = fold([event("step.created", step_id="s1", at=T0)], policy=policy)  # created implicitly
    assert state.run.inactive_at() == T0 + 60 * SECOND


@pytest.mark.parametrize(
    ("ev_type", "kw", "outcome"),
    [
        ("run.heartbeat", {}, Outcome.APPLIED),
        ("step.created", {"step_id": "s1"}, Outcome.APPLIED),
        ("run.resumed", {}, Outcome.STALE),
        ("run.started", {}, Outcome.STALE),
    ],
)
def test_any_event_moves_the_clock_to_its_arrival(ev_type: str, kw: dict[str, str], outcome: Outcome) -> None:
    later = T0 + 20 * SECOND
    result = arrive(started(), ev_type, at=T0 + SECOND, arrived=later, now=later + 500, **kw)
    assert result.outcome is outcome
    assert isinstance(result.state, RunState)
    assert result.state.run.active_at == later
    assert result.state.run.inactive_at() == later + LIMIT


def test_a_duplicate_moves_the_clock_and_stays_a_duplicate() -> None:
    state = started()
    ev = event("run.started", at=T0, id_="evt_dup")
    later = T0 + 20 * SECOND
    result = apply_event(state, Incoming(ev, Origin.EVENT, None, later), now=later, seen={"evt_dup"}, policy=POLICY)
    assert (result.outcome, result.remember_id, result.history) == (Outcome.DUPLICATE, False, ())
    assert isinstance(result.state, RunState)
    assert result.state.run.active_at == later


def test_an_event_stale_by_sequence_moves_the_clock() -> None:
    state = fold([event("run.started", at=T0, sequence=1, data=QUIET)])
    later = T0 + 20 * SECOND
    result = arrive(state, "run.heartbeat", at=None, arrived=later, now=later, sequence=1)
    assert result.outcome is Outcome.STALE
    assert isinstance(result.state, RunState)
    assert result.state.run.active_at == later


def test_the_clock_never_moves_back() -> None:
    state = arrive(started(), "run.heartbeat", at=None, arrived=T0 + 20 * SECOND, now=T0 + 20 * SECOND).state
    result = arrive(state, "run.heartbeat", at=T0, arrived=T0 + 5 * SECOND, now=T0 + 21 * SECOND)  # held up
    assert isinstance(result.state, RunState)
    assert result.state.run.active_at == T0 + 20 * SECOND


def test_a_heartbeat_changes_nothing_but_the_clock_and_leaves_no_trace_in_history() -> None:
    state = started()
    later = T0 + 10 * SECOND
    result = arrive(state, "run.heartbeat", at=later, arrived=later, now=later)
    assert (result.outcome, result.history, result.remember_id) == (Outcome.APPLIED, (), False)
    assert isinstance(result.state, RunState)
    assert result.state.model_copy(update={"run": state.run}) == state
    assert result.state.run == state.run.model_copy(update={"active_at": later})


def test_a_heartbeat_for_an_unknown_run_is_stale_and_creates_nothing() -> None:
    result = apply(None, event("run.heartbeat", at=T0))
    assert (result.outcome, result.state, result.history) == (Outcome.STALE, None, ())


@pytest.mark.parametrize("end", ["run.completed", "run.cancelled", "run.failed"])
def test_a_heartbeat_for_a_finished_run_is_stale(end: str) -> None:
    state = fold([event("run.started", at=T0, data=QUIET), event(end, at=T0 + SECOND)])
    result = apply(state, event("run.heartbeat", at=T0 + 2 * SECOND))
    assert (result.outcome, result.history) == (Outcome.STALE, ())
    assert result.state == state


def test_a_heartbeat_for_a_tombstone_is_stale() -> None:
    tomb = Tombstone("run_1", "completed")
    assert apply(tomb, event("run.heartbeat", at=T0)).outcome is Outcome.STALE


def test_silence_fires_at_its_instant_never_before() -> None:
    state = fold([event("run.started", at=T0, data=QUIET), event("step.created", step_id="s1", at=T0)])
    instant = T0 + LIMIT
    assert fire_deadlines(state, now=instant - 1, policy=POLICY).outcome is Outcome.STALE
    fired = fire_deadlines(state, now=instant + 700, policy=POLICY)
    assert fired.outcome is Outcome.APPLIED
    assert isinstance(fired.state, RunState)
    run = fired.state.run
    assert (run.status, run.completed_at) == ("timeout", instant)
    assert run.error is not None
    assert (run.error.code, run.error.message) == ("TIMEOUT", "no event for 30 s")
    assert [(t.object, t.to, t.at, t.origin, t.note) for t in fired.history] == [
        ("run", "timeout", instant, "deadline", "inactivity"),
        ("step", "expired", instant, "cascade", None),
    ]
    assert fire_deadlines(fired.state, now=instant + 5000, policy=POLICY).outcome is Outcome.STALE  # never twice


def test_an_event_that_arrives_after_the_silence_finds_the_run_timed_out() -> None:
    instant = T0 + LIMIT
    late = instant + 3 * SECOND
    result = arrive(started(), "run.completed", at=T0 + SECOND, arrived=late, now=late)  # occurred in time, too late
    assert result.outcome is Outcome.STALE
    assert isinstance(result.state, RunState)
    assert (result.state.run.status, result.state.run.completed_at) == ("timeout", instant)
    assert [(t.to, t.note) for t in result.history] == [("timeout", "inactivity")]


def test_a_duplicate_that_arrives_after_the_silence_fires_it_first() -> None:
    late = T0 + LIMIT + SECOND
    ev = event("run.started", at=T0, id_="evt_dup")
    result = apply_event(started(), Incoming(ev, Origin.EVENT, None, late), now=late, seen={"evt_dup"}, policy=POLICY)
    assert result.outcome is Outcome.DUPLICATE
    assert [(t.to, t.at, t.note) for t in result.history] == [("timeout", T0 + LIMIT, "inactivity")]


def test_the_earlier_of_the_run_timeout_and_the_silence_fires() -> None:
    state = started(timeout_seconds=20)  # its run timeout comes first
    fired = fire_deadlines(state, now=T0 + 60 * SECOND, policy=POLICY)
    assert [(t.at, t.note) for t in fired.history] == [(T0 + 20 * SECOND, None)]


def test_waiting_pauses_the_clock_and_resuming_restarts_it() -> None:
    state = fold([event("run.started", at=T0, data=QUIET), event("run.waiting", at=T0 + SECOND)])
    assert state.run.inactive_at() is None
    assert upcoming(state) == []
    hour = T0 + 3600 * SECOND
    assert fire_deadlines(state, now=hour, policy=POLICY).outcome is Outcome.STALE
    resumed = arrive(state, "run.resumed", at=hour, arrived=hour, now=hour)
    assert (resumed.outcome, resumed.history[-1].to) == (Outcome.APPLIED, "running")
    assert isinstance(resumed.state, RunState)
    assert resumed.state.run.inactive_at() == hour + LIMIT


def test_the_check_stays_put_while_not_due_soon_and_never_passes_the_deadline() -> None:
    state = arm(started().run, T0)
    assert state.inactivity_check_at == T0 + LIMIT
    early = evolve_alive(state, T0 + 10 * SECOND)  # 20 s before the check: not soon
    assert arm(early, T0 + 10 * SECOND).inactivity_check_at == T0 + LIMIT
    late = evolve_alive(state, T0 + 20 * SECOND)  # 10 s before it, a third of the timeout: soon
    assert arm(late, T0 + 20 * SECOND).inactivity_check_at == T0 + 50 * SECOND
    due = arm(early, T0 + LIMIT)  # the check came due on a run heard from since: on to the deadline
    assert due.inactivity_check_at == T0 + 40 * SECOND
    shorter = evolve_alive(state, T0).model_copy(update={"inactivity_timeout_seconds": 5})
    assert arm(shorter, T0).inactivity_check_at == T0 + 5 * SECOND  # never after the deadline


def test_next_due_is_the_check_and_upcoming_lists_the_deadline() -> None:
    state = started()
    checked = state.model_copy(update={"run": state.run.model_copy(update={"inactivity_check_at": T0 + SECOND})})
    assert next_due(checked) == T0 + SECOND
    assert [(d.kind, d.due) for d in upcoming(checked)] == [("inactivity_timeout", T0 + LIMIT)]


def evolve_alive(run: Run, at: int) -> Run:
    return run.model_copy(update={"active_at": at})
