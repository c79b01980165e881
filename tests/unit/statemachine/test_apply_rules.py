"""The rules apply_event adds to the outcome tables (docs/design.md, "Lifecycles and outcomes" and
"Deadlines and timers"): one test per rule, each asserting the whole result."""

from decimal import Decimal

import pytest

from statemachine import EventType, Origin, Outcome, Policy, Result, RunState, Tombstone
from statemachine.apply import Incoming, apply_event
from statemachine.errors import AccountMismatch
from statemachine.events import ErrorInfo, Usage
from statemachine.models import Step, Totals, totals
from tests.support.applykit import POLICY, SECOND, T0, apply, event, fold, record

USAGE = {"prompt_tokens": 812, "completion_tokens": 95, "cached_tokens": 512, "reasoning_tokens": 7}


def stamps(obj: object, *names: str) -> dict[str, int | None]:
    return {name: getattr(obj, name) for name in names}


STEP_STAMPS = ("completed_at", "failed_at", "cancelled_at", "expired_at")
RUN_STAMPS = ("completed_at", "failed_at", "cancelled_at")


# --- duplicates -------------------------------------------------------------------------


def test_an_event_id_already_seen_on_its_run_is_a_duplicate_that_changes_nothing() -> None:
    before = fold([event("run.started", at=T0)])
    ev = event("run.completed", at=T0 + SECOND)

    assert apply(before, ev, seen={ev.id}) == Result(before, Outcome.DUPLICATE, remember_id=False)


def test_a_resent_id_is_a_duplicate_even_when_its_content_differs() -> None:
    before = fold([event("run.started", at=T0, id_="evt_1")])
    resent = event("run.cancelled", at=T0 + SECOND, id_="evt_1")

    assert apply(before, resent, seen={"evt_1"}) == Result(before, Outcome.DUPLICATE, remember_id=False)


def test_event_ids_are_scoped_to_their_run() -> None:
    seen: dict[str, set[str]] = {"run_a": set(), "run_b": set()}
    states: dict[str, RunState] = {}
    outcomes = []
    for run_id, ev in [
        ("run_a", event("run.started", "run_a", at=T0, id_="evt_1")),
        ("run_b", event("run.started", "run_b", at=T0, id_="evt_1")),
        ("run_a", event("run.completed", "run_a", at=T0 + SECOND, id_="evt_2")),
        ("run_b", event("run.completed", "run_b", at=T0 + SECOND, id_="evt_2")),
        ("run_a", event("run.completed", "run_a", at=T0 + SECOND, id_="evt_2")),
    ]:
        result = apply(states.get(run_id), ev, seen=seen[run_id])
        outcomes.append((run_id, ev.id, result.outcome))
        if result.remember_id:
            seen[run_id].add(ev.id)
        assert isinstance(result.state, RunState)
        states[run_id] = result.state

    assert outcomes == [
        ("run_a", "evt_1", Outcome.APPLIED),
        ("run_b", "evt_1", Outcome.APPLIED),
        ("run_a", "evt_2", Outcome.APPLIED),
        ("run_b", "evt_2", Outcome.APPLIED),
        ("run_a", "evt_2", Outcome.DUPLICATE),
    ]
    assert {run_id: state.run.status for run_id, state in states.items()} == {
        "run_a": "completed",
        "run_b": "completed",
    }


# --- run.started fills in an implicitly created run -------------------------------------

FULL_START = {
    "account_id": "acct_1",
    "runnable_id": "rbl_1",
    "parent_run_id": "run_0",
    "created_by": "user_1",
    "telemetry_span_id": "span_1",
    "experiment_id": "exp_1",
    "experiment_candidate_id": "cand_1",
    "agent_id": "asst_1",
    "thread_id": "thread_1",
    "timeout_seconds": 600,
    "waiting_timeout_seconds": 60,
    "state": {"step": 3, "notes": ["a"]},
    "metadata": {"team": "search"},
}
FILLED = {
    "account_id": "acct_1",
    "started": True,
    "runnable_id": "rbl_1",
    "parent_run_id": "run_0",
    "created_by": "user_1",
    "telemetry_span_id": "span_1",
    "experiment_id": "exp_1",
    "experiment_candidate_id": "cand_1",
    "assistant_id": "asst_1",
    "thread_id": "thread_1",
    "timeout_seconds": 600,
    "timeout_at": T0 + 600 * SECOND,  # from the run's created_at, the implicit creation
    "waiting_timeout_seconds": 60,
    "state": {"step": 3, "notes": ["a"]},
    "metadata": {"team": "search"},
}


def test_run_started_fills_in_an_implicitly_created_run_without_a_status_change() -> None:
    policy = Policy(default_run_timeout=3600, default_account="acct_1")  # the account its run.started names
    before = fold([event("step.created", step_id="step_1", at=T0)], policy=policy)
    assert (before.run.started, before.run.account_id, before.run.timeout_at) == (False, "acct_1", T0 + 3600 * SECOND)

    result = apply(before, event("run.started", at=T0 + 2 * SECOND, data=FULL_START), policy=Policy())

    expected = before.model_copy(update={"run": before.run.model_copy(update=FILLED)})
    assert result == Result(expected, Outcome.STALE)


def test_run_started_fills_in_a_waiting_run_and_it_keeps_waiting() -> None:
    before = fold([event("run.waiting", at=T0)], policy=Policy(default_account="acct_1"))
    assert (before.run.status, before.run.started) == ("waiting", False)

    result = apply(before, event("run.started", at=T0 + SECOND, data=FULL_START))

    expected = before.model_copy(update={"run": before.run.model_copy(update=FILLED)})
    assert result == Result(expected, Outcome.STALE)


def test_a_late_run_started_moves_an_implicit_runs_created_at_earlier_and_its_timeout_with_it() -> None:
    before = fold([event("step.created", step_id="step_1", at=T0)], policy=Policy(default_run_timeout=3600))

    result = apply(before, event("run.started", at=T0 - 5 * SECOND, data={"runnable_id": "rbl_1"}), now=T0 + SECOND)

    moved = {"created_at": T0 - 5 * SECOND, "timeout_at": T0 + 3595 * SECOND, "started": True, "runnable_id": "rbl_1"}
    expected = before.model_copy(update={"run": before.run.model_copy(update=moved)})
    assert result == Result(expected, Outcome.STALE)


def test_an_event_without_occurred_at_is_stamped_when_it_was_published_not_when_applied() -> None:
    started, completed = event("run.started"), event("run.completed")

    def applied(now: int) -> tuple[RunState, list[tuple[int, str, int]]]:
        """Both applied at `now`, as after a commit lost at failover: published at T0 and T0 + 1 s;
        the state, and each transition's number, status and stamp (what a webhook id is made of)."""
        first = apply_event(None, Incoming(started, arrived_at=T0), now=now)
        assert isinstance(first.state, RunState)
        second = apply_event(first.state, Incoming(completed, arrived_at=T0 + SECOND), now=now + 1)
        assert isinstance(second.state, RunState)
        return second.state, [(t.n, t.to, t.at) for t in first.history + second.history]

    state, history = applied(T0 + 5 * SECOND)
    assert (state.run.created_at, state.run.completed_at) == (T0, T0 + SECOND)
    assert history == [(1, "running", T0), (2, "completed", T0 + SECOND)]
    assert applied(T0 + 60 * SECOND) == (state, history)  # applied again later: the same stamps and webhook ids


def test_a_publish_time_ahead_of_the_apply_time_is_not_believed() -> None:
    result = apply_event(None, Incoming(event("run.started"), arrived_at=T0 + SECOND), now=T0)
    assert isinstance(result.state, RunState)
    assert result.state.run.created_at == T0


def test_a_late_run_started_stamped_later_never_moves_created_at_later() -> None:
    before = fold([event("run.completed", at=T0)])

    result = apply(before, event("run.started", at=T0 + 9 * SECOND, data={"runnable_id": "rbl_1"}))

    filled = before.run.model_copy(update={"started": True, "runnable_id": "rbl_1"})
    assert result == Result(before.model_copy(update={"run": filled}), Outcome.STALE)
    assert filled.created_at == T0


def test_a_second_run_started_changes_nothing() -> None:
    before = fold([event("run.started", at=T0, data={"runnable_id": "rbl_1", "metadata": {"a": "1"}})])

    result = apply(before, event("run.started", at=T0 + SECOND, data={"runnable_id": "rbl_2", "timeout_seconds": 5}))

    assert result == Result(before, Outcome.STALE)


@pytest.mark.parametrize(
    ("timeout", "timeout_at"),
    [(None, None), (0, None), (-5, None), (0.5, None), (1, T0 + SECOND), (90.5, T0 + 90_500)],
)
def test_run_timeout_below_one_second_or_null_means_none(timeout: float | None, timeout_at: int | None) -> None:
    state = fold([event("run.started", at=T0, data={"timeout_seconds": timeout})], policy=Policy())

    assert (state.run.timeout_seconds, state.run.timeout_at) == (timeout, timeout_at)


def test_an_absent_run_timeout_takes_the_policy_default() -> None:
    state = fold([event("run.started", at=T0)], policy=Policy(default_run_timeout=3600))

    assert (state.run.timeout_seconds, state.run.timeout_at) == (3600, T0 + 3600 * SECOND)


# --- cascades ---------------------------------------------------------------------------


def three_steps() -> RunState:
    return fold(
        [
            event("run.started", at=T0),
            event("step.created", step_id="step_1", at=T0 + 1 * SECOND),
            event("step.created", step_id="step_2", at=T0 + 2 * SECOND),
            event("step.created", step_id="step_3", at=T0 + 3 * SECOND),
            event("step.completed", step_id="step_2", at=T0 + 4 * SECOND),
        ]
    )


@pytest.mark.parametrize(
    ("end", "run_status", "step_status"),
    [
        ("run.completed", "completed", "cancelled"),
        ("run.failed", "failed", "cancelled"),
        ("run.cancelled", "cancelled", "cancelled"),
        ("run.timed_out", "timeout", "expired"),
    ],
)
def test_a_run_that_ends_closes_its_open_steps_in_the_same_update(end: str, run_status: str, step_status: str) -> None:
    before = three_steps()
    ended, now = T0 + 10 * SECOND, T0 + 10 * SECOND + 7
    ev = event(end, at=ended)

    result = apply(before, ev, now=now)

    n = before.history_len
    cause = {"at": ended, "applied_at": now, "event_id": ev.id, "event_type": end}
    assert result.outcome is Outcome.APPLIED
    assert result.history == (
        record(n + 1, "run", "run_1", "running", run_status, origin=Origin.EVENT, **cause),
        record(n + 2, "step", "step_1", "in_progress", step_status, origin=Origin.CASCADE, **cause),
        record(n + 3, "step", "step_3", "in_progress", step_status, origin=Origin.CASCADE, **cause),
    )
    assert isinstance(result.state, RunState)
    steps = result.state.steps
    for step_id in ("step_1", "step_3"):
        assert steps[step_id] == before.steps[step_id].model_copy(
            update={"status": step_status, f"{step_status}_at": ended}
        )
    assert steps["step_2"] == before.steps["step_2"]
    assert list(steps) == ["step_1", "step_2", "step_3"]
    assert result.state.history_len == n + 3


def test_an_api_cancel_is_recorded_with_origin_api_and_its_cascade_as_cascade() -> None:
    before = three_steps()
    ev = event("run.cancelled")

    result = apply(before, ev, now=T0 + 20 * SECOND, origin=Origin.API)

    assert [(t.object, t.id, t.origin, t.at) for t in result.history] == [
        ("run", "run_1", Origin.API, T0 + 20 * SECOND),
        ("step", "step_1", Origin.CASCADE, T0 + 20 * SECOND),
        ("step", "step_3", Origin.CASCADE, T0 + 20 * SECOND),
    ]


# --- late usage -------------------------------------------------------------------------


def ended_with_open_step() -> RunState:
    return fold(
        [
            event("run.started", at=T0),
            event("step.created", step_id="step_1", at=T0 + SECOND),
            event("run.cancelled", at=T0 + 5 * SECOND),
        ]
    )


def test_a_step_event_on_an_ended_run_still_adds_the_usage_it_reports() -> None:
    before = ended_with_open_step()
    assert before.steps["step_1"].status == "cancelled"
    late = event("step.completed", step_id="step_1", at=T0 + 4 * SECOND, data={"usage": USAGE, "cost_usd": 0.0031})

    result = apply(before, late, now=T0 + 9 * SECOND)

    step = before.steps["step_1"].model_copy(
        update={"usage": Usage(**USAGE), "cost_usd": Decimal("0.0031"), "cost_source": "reported"}
    )
    expected = before.model_copy(update={"steps": {"step_1": step}, "history_len": before.history_len + 1})
    note = record(
        before.history_len + 1,
        "step",
        "step_1",
        "cancelled",
        "cancelled",
        at=T0 + 4 * SECOND,
        applied_at=T0 + 9 * SECOND,
        event_id=late.id,
        event_type="step.completed",
        origin=Origin.EVENT,
        note="late_usage",
    )
    assert result == Result(expected, Outcome.STALE, (note,), late_usage=True)
    assert totals(result.state.steps) == Totals(812, 95, 512, 7, Decimal("0.0031"))


def test_late_usage_is_never_added_twice() -> None:
    first = event("step.completed", step_id="step_1", at=T0 + 4 * SECOND, data={"usage": USAGE, "cost_usd": 0.5})
    once = apply(ended_with_open_step(), first).state
    again = event("step.failed", step_id="step_1", at=T0 + 6 * SECOND, data={"usage": USAGE, "cost_usd": 0.5})

    result = apply(once, again)

    assert result == Result(once, Outcome.STALE)
    assert totals(result.state.steps) == Totals(812, 95, 512, 7, Decimal("0.5"))


def test_a_step_that_reported_usage_before_its_run_ended_takes_no_more() -> None:
    before = fold(
        [
            event("run.started", at=T0),
            event("step.completed", step_id="step_1", at=T0 + SECOND, data={"usage": USAGE}),
            event("run.completed", at=T0 + 5 * SECOND),
        ]
    )

    result = apply(before, event("step.failed", step_id="step_1", data={"usage": USAGE, "cost_usd": 1}))

    # cost was never recorded for this step, so it is the one thing still added
    step = before.steps["step_1"].model_copy(update={"cost_usd": Decimal(1), "cost_source": "reported"})
    assert result.outcome is Outcome.STALE
    assert result.state.steps == {"step_1": step}
    assert [(t.from_, t.to, t.note) for t in result.history] == [("completed", "completed", "late_usage")]


@pytest.mark.parametrize(("end", "closed"), [("run.completed", "cancelled"), ("run.timed_out", "expired")])
def test_a_step_first_heard_of_after_its_run_ended_is_recorded_closed_with_its_usage(end: str, closed: str) -> None:
    before = fold([event("run.started", at=T0), event(end, at=T0 + 5 * SECOND)])
    data = {"usage": USAGE, "cost_usd": 0.25, "model": "gpt-4o", "provider_name": "openai"}
    late = event("step.completed", step_id="step_9", at=T0 + 8 * SECOND, data=data)

    result = apply(before, late, now=T0 + 9 * SECOND)

    ended = T0 + 5 * SECOND
    step = Step(
        id="step_9",
        run_id="run_1",
        created_at=ended,
        status=closed,
        model="gpt-4o",
        provider_name="openai",
        usage=Usage(**USAGE),
        cost_usd=Decimal("0.25"),
        cost_source="reported",
        **{f"{closed}_at": ended},
    )
    n = before.history_len
    cause = {"applied_at": T0 + 9 * SECOND, "event_id": late.id, "event_type": "step.completed"}
    assert result == Result(
        before.model_copy(update={"steps": {"step_9": step}, "history_len": n + 2}),
        Outcome.STALE,
        (
            record(n + 1, "step", "step_9", None, closed, at=ended, origin=Origin.CASCADE, **cause),
            record(
                n + 2,
                "step",
                "step_9",
                closed,
                closed,
                at=T0 + 8 * SECOND,
                origin=Origin.EVENT,
                note="late_usage",
                **cause,
            ),
        ),
        late_usage=True,
    )


@pytest.mark.parametrize("event_type", ["step.created", "step.completed", "step.failed", "step.cancelled"])
def test_a_step_event_without_usage_on_an_ended_run_changes_nothing(event_type: str) -> None:
    before = ended_with_open_step()

    for step_id in ("step_1", "step_new"):
        result = apply(before, event(event_type, step_id=step_id, at=T0 + 6 * SECOND, data={"model": "gpt-4o"}))
        assert result == Result(before, Outcome.STALE)


# --- stamps -----------------------------------------------------------------------------


@pytest.mark.parametrize("status", ["completed", "failed", "cancelled", "expired"])
def test_a_terminal_step_has_exactly_the_stamp_of_its_status(status: str) -> None:
    created = fold([event("run.started", at=T0), event("step.created", step_id="step_1", at=T0 + SECOND)])
    assert stamps(created.steps["step_1"], *STEP_STAMPS) == dict.fromkeys(STEP_STAMPS)

    ended = apply(created, event(f"step.{status}", step_id="step_1", at=T0 + 3 * SECOND)).state

    expected = {name: T0 + 3 * SECOND if name == f"{status}_at" else None for name in STEP_STAMPS}
    assert stamps(ended.steps["step_1"], *STEP_STAMPS) == expected


@pytest.mark.parametrize(
    ("end", "expected"),
    [
        ("run.completed", {"completed_at": True, "failed_at": False, "cancelled_at": False}),
        ("run.failed", {"completed_at": True, "failed_at": True, "cancelled_at": False}),
        ("run.cancelled", {"completed_at": True, "failed_at": False, "cancelled_at": True}),
        ("run.timed_out", {"completed_at": True, "failed_at": False, "cancelled_at": False}),
    ],
)
def test_a_run_is_stamped_completed_on_every_end_failed_and_cancelled_only_by_theirs(
    end: str, expected: dict[str, bool]
) -> None:
    waiting = fold([event("run.started", at=T0), event("run.waiting", at=T0 + SECOND)])
    assert stamps(waiting.run, *RUN_STAMPS) == dict.fromkeys(RUN_STAMPS)

    ended = apply(waiting, event(end, at=T0 + 4 * SECOND)) if end != "run.completed" else None
    if ended is None:  # a waiting run must resume before it completes
        resumed = apply(waiting, event("run.resumed", at=T0 + 2 * SECOND)).state
        ended = apply(resumed, event(end, at=T0 + 4 * SECOND))

    assert ended.outcome is Outcome.APPLIED
    assert stamps(ended.state.run, *RUN_STAMPS) == {
        name: T0 + 4 * SECOND if present else None for name, present in expected.items()
    }


def test_without_occurred_at_every_stamp_is_when_the_event_is_applied() -> None:
    created = apply(None, event("run.started"), now=T0 + 7).state
    with_step = apply(created, event("step.created", step_id="step_1"), now=T0 + 20).state
    step_done = apply(with_step, event("step.failed", step_id="step_1"), now=T0 + 30)
    run_done = apply(step_done.state, event("run.failed"), now=T0 + 40)

    assert created.run.created_at == T0 + 7
    assert with_step.steps["step_1"].created_at == T0 + 20
    assert step_done.state.steps["step_1"].failed_at == T0 + 30
    assert stamps(run_done.state.run, *RUN_STAMPS) == {
        "completed_at": T0 + 40,
        "failed_at": T0 + 40,
        "cancelled_at": None,
    }
    assert [t.at for t in step_done.history + run_done.history] == [T0 + 30, T0 + 40]


def test_a_stamp_earlier_than_created_at_is_clamped_to_created_at() -> None:
    before = fold(
        [event("run.started", at=T0 + 10 * SECOND), event("step.created", step_id="step_1", at=T0 + 20 * SECOND)]
    )

    step_done = apply(before, event("step.completed", step_id="step_1", at=T0 + 15 * SECOND))
    run_done = apply(before, event("run.cancelled", at=T0 + 5 * SECOND))

    assert step_done.state.steps["step_1"].completed_at == T0 + 20 * SECOND
    assert stamps(run_done.state.run, *RUN_STAMPS) == {
        "completed_at": T0 + 10 * SECOND,
        "failed_at": None,
        "cancelled_at": T0 + 10 * SECOND,
    }
    assert run_done.state.steps["step_1"].cancelled_at == T0 + 20 * SECOND  # its own created_at
    assert [(t.id, t.at) for t in step_done.history + run_done.history] == [
        ("step_1", T0 + 20 * SECOND),
        ("run_1", T0 + 10 * SECOND),
        ("step_1", T0 + 20 * SECOND),
    ]


# --- exact money ------------------------------------------------------------------------


def test_totals_are_exact_decimal_sums_over_steps() -> None:
    state = fold(
        [
            event("run.started", at=T0),
            event("step.completed", step_id="step_1", data={"usage": USAGE, "cost_usd": 0.1}),
            event("step.completed", step_id="step_2", data={"usage": {"prompt_tokens": 100}, "cost_usd": 0.2}),
            event("step.failed", step_id="step_3", data={"usage": {"completion_tokens": 3}, "cost_usd": 0.0031}),
            event("step.completed", step_id="step_4"),
        ]
    )

    assert totals(state.steps) == Totals(
        prompt_tokens=912, completion_tokens=98, cached_tokens=512, reasoning_tokens=7, cost_usd=Decimal("0.3031")
    )
    assert 0.1 + 0.2 + 0.0031 != 0.3031  # the float running sum this must not be


# --- accounts ---------------------------------------------------------------------------


def acct_a_run() -> RunState:
    return fold([event("run.started", at=T0, data={"account_id": "acct_a"})])


def test_run_started_naming_another_account_is_rejected_and_leaves_no_trace() -> None:
    before = acct_a_run()

    result = apply(before, event("run.started", at=T0 + SECOND, data={"account_id": "acct_b"}))

    assert (result.state, result.outcome, result.history, result.late_usage, result.remember_id) == (
        before,
        Outcome.REJECTED,
        (),
        False,
        False,
    )
    assert isinstance(result.rejection, AccountMismatch)
    assert str(result.rejection) == "account_mismatch: run run_1 does not belong to account acct_b"


@pytest.mark.parametrize(
    "ev",
    [
        event("run.started", at=T0 + SECOND),
        event("run.cancelled", at=T0 + SECOND),
        event("step.completed", step_id="step_1", at=T0 + SECOND, data={"usage": USAGE}),
    ],
    ids=lambda ev: ev.type,
)
def test_an_event_through_another_accounts_token_is_rejected(ev) -> None:
    before = acct_a_run()

    result = apply(before, ev, account="acct_b")

    assert (result.state, result.outcome, result.history, result.remember_id) == (before, Outcome.REJECTED, (), False)
    assert str(result.rejection) == "account_mismatch: run run_1 does not belong to account acct_b"


@pytest.mark.parametrize("token", [None, "acct_a"])
def test_an_event_naming_no_other_account_belongs_to_the_run(token: str | None) -> None:
    result = apply(acct_a_run(), event("run.cancelled", at=T0 + SECOND), account=token)

    assert (result.outcome, result.rejection, result.state.run.status, result.state.run.account_id) == (
        Outcome.APPLIED,
        None,
        "cancelled",
        "acct_a",
    )


def test_a_token_and_data_that_disagree_are_rejected_even_before_the_run_exists() -> None:
    result = apply(None, event("run.started", at=T0, data={"account_id": "acct_b"}), account="acct_a")

    assert (result.state, result.outcome, result.history, result.remember_id) == (None, Outcome.REJECTED, (), False)
    assert str(result.rejection) == "account_mismatch: run run_1 does not belong to account acct_b"


@pytest.mark.parametrize(
    ("data", "token", "account"),
    [
        ({"account_id": "acct_d"}, "acct_d", "acct_d"),
        ({"account_id": "acct_d"}, None, "acct_d"),
        ({}, "acct_t", "acct_t"),
        ({}, None, "fallback"),
    ],
)
def test_a_run_takes_its_account_from_data_else_token_else_default(data, token, account) -> None:
    result = apply(
        None, event("run.started", at=T0, data=data), account=token, policy=Policy(default_account="fallback")
    )

    assert (result.outcome, result.state.run.account_id) == (Outcome.APPLIED, account)


@pytest.mark.parametrize(
    ("data", "token"),
    [({"account_id": "acct_b"}, None), ({}, "acct_b"), ({"account_id": "acct_b"}, "acct_b")],
    ids=["data", "token", "both"],
)
def test_an_implicitly_created_run_keeps_the_account_it_was_created_with(data, token) -> None:
    # a run is (account, run id): the worker applies a run.started naming acct_b to acct_b's own run
    before = fold([event("step.created", step_id="step_1", at=T0)])
    assert before.run.account_id == "default"

    started = apply(before, event("run.started", at=T0 + SECOND, data=data), account=token)

    assert (started.state, started.outcome, started.remember_id) == (before, Outcome.REJECTED, False)
    assert str(started.rejection) == "account_mismatch: run run_1 does not belong to account acct_b"


def test_a_run_created_through_a_token_cannot_be_claimed_by_another_account() -> None:
    before = apply(None, event("step.created", step_id="step_1", at=T0), account="acct_a").state
    assert (before.run.account_id, before.run.started) == ("acct_a", False)

    result = apply(before, event("run.started", at=T0 + SECOND, data={"account_id": "acct_b"}))

    assert (result.state, result.outcome, result.remember_id) == (before, Outcome.REJECTED, False)
    assert isinstance(result.rejection, AccountMismatch)


# --- sequence ---------------------------------------------------------------------------


def sequenced() -> RunState:
    return fold([event("run.started", at=T0, sequence=1), event("run.waiting", at=T0 + SECOND, sequence=2)])


@pytest.mark.parametrize("sequence", [1, 2])
def test_an_event_at_or_below_the_applied_sequence_is_stale(sequence: int) -> None:
    before = sequenced()
    assert before.last_sequence == 2

    assert apply(before, event("run.resumed", at=T0 + 2 * SECOND, sequence=sequence)) == Result(before, Outcome.STALE)


def test_an_event_above_the_applied_sequence_applies_and_raises_it() -> None:
    result = apply(sequenced(), event("run.resumed", at=T0 + 2 * SECOND, sequence=3))

    assert (result.outcome, result.state.run.status, result.state.last_sequence) == (Outcome.APPLIED, "running", 3)


def test_an_event_without_a_sequence_leaves_the_applied_sequence_alone() -> None:
    result = apply(sequenced(), event("run.resumed", at=T0 + 2 * SECOND))

    assert (result.outcome, result.state.last_sequence) == (Outcome.APPLIED, 2)


# --- deadlines that passed before the event ---------------------------------------------

MINUTE_RUNS = Policy(default_run_timeout=60)
DEADLINE = T0 + 60 * SECOND


def minute_run() -> RunState:
    return fold(
        [event("run.started", at=T0), event("step.created", step_id="step_1", at=T0 + SECOND)], policy=MINUTE_RUNS
    )


def test_an_event_after_the_runs_deadline_finds_it_timed_out() -> None:
    before = minute_run()
    assert before.run.timeout_at == DEADLINE
    now = DEADLINE + 2 * SECOND

    result = apply(
        before, event("run.completed", at=DEADLINE + SECOND, data={"outputs": {"a": 1}}), now=now, policy=MINUTE_RUNS
    )

    cause = {"at": DEADLINE, "applied_at": now, "event_id": None, "event_type": "run.timed_out"}
    timed_out = before.run.model_copy(
        update={
            "status": "timeout",
            "completed_at": DEADLINE,
            "error": ErrorInfo(code="TIMEOUT", message="run exceeded its timeout of 60 s"),
        }
    )
    step = before.steps["step_1"].model_copy(update={"status": "expired", "expired_at": DEADLINE})
    n = before.history_len
    assert result == Result(
        before.model_copy(update={"run": timed_out, "steps": {"step_1": step}, "history_len": n + 2}),
        Outcome.STALE,
        (
            record(n + 1, "run", "run_1", "running", "timeout", origin=Origin.DEADLINE, **cause),
            record(n + 2, "step", "step_1", "in_progress", "expired", origin=Origin.CASCADE, **cause),
        ),
    )


@pytest.mark.parametrize("occurred", [DEADLINE - SECOND, DEADLINE], ids=["before", "at"])
def test_a_completion_that_occurred_by_the_deadline_wins_even_when_applied_after_it(occurred: int) -> None:
    ev = event("run.completed", at=occurred, data={"outputs": {"a": 1}})

    result = apply(minute_run(), ev, now=DEADLINE + 30 * SECOND, policy=MINUTE_RUNS)

    assert result.outcome is Outcome.APPLIED
    assert [(t.id, t.to, t.origin, t.at) for t in result.history] == [
        ("run_1", "completed", Origin.EVENT, occurred),
        ("step_1", "cancelled", Origin.CASCADE, occurred),
    ]
    assert (result.state.run.outputs, result.state.run.error) == ({"a": 1}, None)


def test_an_event_without_occurred_at_is_judged_by_when_it_is_applied() -> None:
    result = apply(minute_run(), event("run.completed"), now=DEADLINE + 1, policy=MINUTE_RUNS)

    assert result.outcome is Outcome.STALE
    assert [(t.to, t.origin, t.at, t.applied_at) for t in result.history] == [
        ("timeout", Origin.DEADLINE, DEADLINE, DEADLINE + 1),
        ("expired", Origin.CASCADE, DEADLINE, DEADLINE + 1),
    ]


def step_expiring() -> RunState:
    return fold(
        [
            event("run.started", at=T0),
            event("step.created", step_id="step_1", at=T0 + SECOND, data={"expires_at": "2026-11-25T10:00:10Z"}),
        ]
    )


def test_a_step_event_after_the_steps_expiry_finds_it_expired() -> None:
    before = step_expiring()
    expiry = T0 + 10 * SECOND
    assert before.steps["step_1"].expires_at == expiry

    result = apply(before, event("step.completed", step_id="step_1", at=expiry + 1), now=expiry + SECOND)

    step = before.steps["step_1"].model_copy(update={"status": "expired", "expired_at": expiry})
    expired = record(
        before.history_len + 1,
        "step",
        "step_1",
        "in_progress",
        "expired",
        at=expiry,
        applied_at=expiry + SECOND,
        event_id=None,
        event_type="step.expired",
        origin=Origin.DEADLINE,
    )
    assert result == Result(
        before.model_copy(update={"steps": {"step_1": step}, "history_len": before.history_len + 1}),
        Outcome.STALE,
        (expired,),
    )
    assert result.state.run == before.run


def test_a_step_completion_by_its_expiry_wins() -> None:
    expiry = T0 + 10 * SECOND

    result = apply(step_expiring(), event("step.completed", step_id="step_1", at=expiry), now=expiry + SECOND)

    assert (result.outcome, [(t.to, t.origin) for t in result.history]) == (
        Outcome.APPLIED,
        [("completed", Origin.EVENT)],
    )
    assert result.state.steps["step_1"].completed_at == expiry


def test_a_step_without_expires_at_expires_after_the_policy_default() -> None:
    state = fold([event("step.created", step_id="step_1", at=T0)], policy=Policy(default_step_timeout=30))

    assert state.steps["step_1"].expires_at == T0 + 30 * SECOND


# --- waiting timeout --------------------------------------------------------------------


def waiting_for(seconds: float | None, **start: object) -> RunState:
    wait = {} if seconds is None else {"waiting_timeout_seconds": seconds}
    return fold([event("run.started", at=T0, data=start), event("run.waiting", at=T0 + 10 * SECOND, data=wait)])


def test_a_wait_longer_than_its_waiting_timeout_times_the_run_out() -> None:
    before = waiting_for(30)
    until = T0 + 40 * SECOND
    assert before.run.waiting_until == until

    result = apply(before, event("run.resumed", at=T0 + 50 * SECOND))

    timed_out = before.run.model_copy(
        update={
            "status": "timeout",
            "completed_at": until,
            "error": ErrorInfo(code="TIMEOUT", message="run waited for input longer than its waiting timeout"),
        }
    )
    deadline = record(
        before.history_len + 1,
        "run",
        "run_1",
        "waiting",
        "timeout",
        at=until,
        applied_at=T0 + 50 * SECOND,
        event_id=None,
        event_type="run.timed_out",
        origin=Origin.DEADLINE,
    )
    assert result == Result(
        before.model_copy(update={"run": timed_out, "history_len": before.history_len + 1}), Outcome.STALE, (deadline,)
    )


def test_resuming_in_time_clears_the_wait_deadline() -> None:
    resumed = apply(waiting_for(30), event("run.resumed", at=T0 + 30 * SECOND))
    assert (resumed.outcome, resumed.state.run.status, resumed.state.run.waiting_until) == (
        Outcome.APPLIED,
        "running",
        None,
    )

    later = apply(resumed.state, event("run.completed", at=T0 + 500 * SECOND))

    assert (later.outcome, later.state.run.status) == (Outcome.APPLIED, "completed")


def test_run_started_waiting_timeout_bounds_every_wait() -> None:
    state = waiting_for(None, waiting_timeout_seconds=20)
    assert state.run.waiting_until == T0 + 30 * SECOND

    resumed = apply(state, event("run.resumed", at=T0 + 20 * SECOND)).state
    again = apply(resumed, event("run.waiting", at=T0 + 100 * SECOND)).state

    assert (again.run.status, again.run.waiting_until) == ("waiting", T0 + 120 * SECOND)


def test_a_wait_may_lift_the_limit_for_itself_only() -> None:
    state = fold(
        [
            event("run.started", at=T0, data={"waiting_timeout_seconds": 20}),
            event("run.waiting", at=T0 + SECOND, data={"waiting_timeout_seconds": None}),
        ]
    )

    assert (state.run.waiting_until, state.run.waiting_timeout_seconds) == (None, 20)
    assert apply(state, event("run.resumed", at=T0 + 1000 * SECOND)).outcome is Outcome.APPLIED


# --- tombstones -------------------------------------------------------------------------


@pytest.mark.parametrize("event_type", list(EventType))
def test_every_event_on_a_tombstone_is_stale(event_type: EventType) -> None:
    tombstone = Tombstone("run_1", "completed")
    step_id = "step_1" if event_type.kind == "step" else None

    result = apply(tombstone, event(event_type, step_id=step_id, at=T0, data=None), policy=POLICY)

    assert result == Result(tombstone, Outcome.STALE, remember_id=False)


# --- nesting and names ------------------------------------------------------------------


def test_a_steps_name_and_parent_step_are_kept_and_its_history_names_the_parent() -> None:
    outer = event("step.created", step_id="step_agent", at=T0, data={"type": "tool_calls", "name": "planner"})
    inner = event(
        "step.completed",
        step_id="step_llm",
        at=T0 + SECOND,
        data={"parent_step_id": "step_agent", "name": "gpt-4o-mini"},
    )
    state = fold([outer])

    result = apply(state, inner)

    assert isinstance(result.state, RunState)
    step = result.state.steps["step_llm"]
    assert (step.name, step.parent_step_id, step.status) == ("gpt-4o-mini", "step_agent", "completed")
    assert result.state.steps["step_agent"].name == "planner"
    assert [(r.id, r.to, r.parent_step_id) for r in result.history] == [
        ("step_llm", "in_progress", "step_agent"),
        ("step_llm", "completed", "step_agent"),
    ]
