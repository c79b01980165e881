"""The output dialects: every shape checked whole, from states built by real events."""

import json
import re
from typing import Any

import pytest
from azure.ai.agents.models import RunStep as AzureRunStep
from jsonschema import Draft202012Validator
from letta_client.types import Step as LettaStep

from statemachine.apply import Incoming, Result, apply_event
from statemachine.dialects import (
    RUN_FORMATS,
    STEP_FORMATS,
    Format,
    letta_stop_reason,
    render_run,
    render_step,
    render_transition,
)
from statemachine.events import parse_event
from statemachine.models import RunState
from statemachine.status import Outcome
from tests.support.paths import DATA

LETTA_SCHEMA = json.loads((DATA / "letta-Step.resolved.schema.json").read_text())
LETTA = Draft202012Validator(LETTA_SCHEMA)

T0 = 1_795_600_800  # 2026-11-25T10:00:00Z in Unix seconds
NOW = (T0 + 60) * 1000  # when the events are applied, in ms

# docs/design.md's refactor example, verbatim.
DESIGN_REFACTOR_EXAMPLE = """
{"id": "run_42", "account_id": "acct_1", "parent_run_id": null, "runnable_id": "rbl_1",
 "telemetry_span_id": null, "experiment_id": null, "experiment_candidate_id": null,
 "status": "completed", "state": {}, "created_by": null,
 "created_at": "2026-11-25T10:00:00Z", "completed_at": "2026-11-25T10:00:07Z", "failed_at": null,
 "total_input_tokens": 300, "total_cached_tokens": 50, "total_output_tokens": 50,
 "total_token_cost_usd": 0.003,
 "result": {"id": "run_42", "outputs": {"answer": "42"}, "metadata": {},
            "usage": [{"provider": "openai", "model": "gpt-4o", "prompt_tokens": 100, "cached_tokens": 50, "completion_tokens": 20},
                      {"provider": "openai", "model": "gpt-4o-mini", "prompt_tokens": 200, "cached_tokens": 0, "completion_tokens": 30}],
            "error": null},
 "metadata": {"team": "search"}}
"""  # noqa: E501

# docs/design.md's history record, verbatim but for n (the third transition of the run below).
DESIGN_RECORD = """
{"n": 7, "object": "step", "id": "step_7", "run_id": "run_42", "from": "in_progress",
 "to": "completed", "event_id": "evt_8f2c", "event_type": "step.completed",
 "origin": "event", "at": "2026-11-25T10:00:03.250Z", "applied_at": "2026-11-25T10:00:03.262Z"}
"""


# --- building states from real events -----------------------------------------------------


def ev(kind: str, second: float, step: str | None = None, **data: Any) -> dict[str, Any]:
    """An event on run_42 that occurred `second` seconds after 10:00:00."""
    raw: dict[str, Any] = {"type": kind, "run_id": "run_42", "occurred_at": T0 + second}
    if step is not None:
        raw["step_id"] = step
    if data:
        raw["data"] = data
    return raw


def play_all(*events: dict[str, Any], now: int = NOW) -> list[Result]:
    state = None
    seen: set[str] = set()
    results = []
    for number, raw in enumerate(events, 1):
        raw = {"id": f"evt_{number}", **raw}
        result = apply_event(state, Incoming(parse_event(json.dumps(raw))), now=now, seen=seen)
        assert result.outcome is not Outcome.REJECTED, result.rejection
        seen.add(raw["id"])
        state = result.state
        results.append(result)
    return results


def play(*events: dict[str, Any]) -> RunState:
    state = play_all(*events)[-1].state
    assert isinstance(state, RunState)
    return state


STARTED = ev("run.started", 0, account_id="acct_1", runnable_id="rbl_1", metadata={"team": "search"})


def two_model_run() -> RunState:
    """docs/design.md's refactor example: a completed run whose steps used two models."""
    return play(
        STARTED,
        ev(
            "step.completed",
            3,
            "step_1",
            model="gpt-4o",
            provider_name="openai",
            usage={"prompt_tokens": 100, "completion_tokens": 20, "cached_tokens": 50},
            cost_usd=0.001,
        ),
        ev(
            "step.completed",
            5,
            "step_2",
            model="gpt-4o-mini",
            provider_name="openai",
            usage={"prompt_tokens": 200, "completion_tokens": 30},
            cost_usd=0.002,
        ),
        ev("run.completed", 7, outputs={"answer": "42"}),
    )


def one_step(*events: dict[str, Any], started: dict[str, Any] = STARTED) -> tuple[RunState, Any]:
    """A run started at 10:00:00, then `events`; returns the state and its only step."""
    state = play(started, *events)
    (step,) = state.steps.values()
    return state, step


def step_in(status: str) -> tuple[RunState, Any]:
    """A tool_calls step created at 10:00:01 and left in `status` at 10:00:04."""
    created = ev("step.created", 1, "step_1", type="tool_calls", assistant_id="asst_1", thread_id="thread_1")
    closing = {
        "in_progress": [],
        "completed": [ev("step.completed", 4, "step_1", usage={"prompt_tokens": 10, "completion_tokens": 5})],
        "failed": [ev("step.failed", 4, "step_1", error={"code": "rate_limit_exceeded", "message": "slow down"})],
        "cancelled": [ev("step.cancelled", 4, "step_1")],
        "expired": [ev("step.expired", 4, "step_1")],
    }[status]
    return one_step(created, *closing)


def plain_json(value: Any) -> bool:
    """True when `value` holds only the exact types JSON has: no enums, Decimals or tuples."""
    if type(value) is dict:
        return all(type(key) is str and plain_json(item) for key, item in value.items())
    if type(value) is list:
        return all(plain_json(item) for item in value)
    return type(value) in (str, int, float, bool, type(None))


STATUSES = ["in_progress", "completed", "failed", "cancelled", "expired"]


# --- formats ------------------------------------------------------------------------------


def test_formats_are_split_between_runs_and_steps() -> None:
    assert (list(Format), RUN_FORMATS, STEP_FORMATS) == (
        ["native", "refactor", "azure", "letta"],
        (Format.NATIVE, Format.REFACTOR),
        (Format.NATIVE, Format.AZURE, Format.LETTA),
    )


@pytest.mark.parametrize("fmt", [Format.AZURE, Format.LETTA])
def test_render_run_refuses_a_step_format(fmt: Format) -> None:
    message = f"format {fmt} renders steps, not runs; expected one of native, refactor"
    with pytest.raises(ValueError, match=re.escape(message)) as caught:
        render_run(two_model_run(), fmt)
    assert str(caught.value) == message


def test_render_step_refuses_the_run_format() -> None:
    state = two_model_run()
    message = "format refactor renders runs, not steps; expected one of native, azure, letta"
    with pytest.raises(ValueError, match=re.escape(message)) as caught:
        render_step(state.steps["step_1"], state.run, Format.REFACTOR)
    assert str(caught.value) == message


@pytest.mark.parametrize("status", STATUSES)
def test_every_dialect_renders_only_plain_json_types(status: str) -> None:
    state, step = step_in(status)
    rendered = [render_run(state, fmt) for fmt in RUN_FORMATS]
    rendered += [render_step(step, state.run, fmt) for fmt in STEP_FORMATS]
    assert [plain_json(shape) for shape in rendered] == [True] * 5


def test_rendered_containers_are_copies_of_the_stored_ones() -> None:
    state = play(ev("run.started", 0, state={"cursor": {"page": 1}}), ev("run.completed", 2, outputs={"a": [1]}))
    shape = render_run(state, Format.REFACTOR)
    shape["state"]["cursor"]["page"] = 2
    shape["result"]["outputs"]["a"].append(2)
    assert (state.run.state, state.run.outputs) == ({"cursor": {"page": 1}}, {"a": [1]})


# --- history records ------------------------------------------------------------------------


def test_transition_renders_as_design_records_example() -> None:
    *_, last = play_all(
        ev("run.started", 0),
        ev("step.created", 1, "step_7"),
        {**ev("step.completed", 3.25, "step_7"), "id": "evt_8f2c"},
        now=(T0 + 3) * 1000 + 262,
    )
    assert [render_transition(t) for t in last.history] == [{**json.loads(DESIGN_RECORD), "n": 3}]


def test_transition_of_a_creation_has_null_from_and_no_note() -> None:
    (first,) = play_all(ev("run.started", 0))
    assert [render_transition(t) for t in first.history] == [
        {
            "n": 1,
            "object": "run",
            "id": "run_42",
            "run_id": "run_42",
            "from": None,
            "to": "running",
            "event_id": "evt_1",
            "event_type": "run.started",
            "origin": "event",
            "at": "2026-11-25T10:00:00Z",
            "applied_at": "2026-11-25T10:01:00Z",
        }
    ]


def test_transition_with_a_note_renders_it_last() -> None:
    *_, late = play_all(
        ev("run.started", 0),
        ev("step.created", 1, "step_1"),
        ev("run.cancelled", 2),
        ev("step.completed", 3, "step_1", usage={"prompt_tokens": 7}),
    )
    records = [render_transition(t) for t in late.history]
    assert (records, list(records[0])[-1]) == (
        [
            {
                "n": 5,  # 3: the run's cancel, 4: the step it closed
                "object": "step",
                "id": "step_1",
                "run_id": "run_42",
                "from": "cancelled",
                "to": "cancelled",
                "event_id": "evt_4",
                "event_type": "step.completed",
                "origin": "event",
                "at": "2026-11-25T10:00:03Z",
                "applied_at": "2026-11-25T10:01:00Z",
                "note": "late_usage",
            }
        ],
        "note",
    )


# --- native -----------------------------------------------------------------------------------


def test_native_run_is_every_field_but_the_internal_flags_plus_totals() -> None:
    shape = render_run(two_model_run(), Format.NATIVE)
    assert shape == {
        "object": "run",
        "id": "run_42",
        "account_id": "acct_1",
        "status": "completed",
        "created_at": "2026-11-25T10:00:00Z",
        "completed_at": "2026-11-25T10:00:07Z",
        "failed_at": None,
        "cancelled_at": None,
        "runnable_id": "rbl_1",
        "parent_run_id": None,
        "created_by": None,
        "telemetry_span_id": None,
        "experiment_id": None,
        "experiment_candidate_id": None,
        "assistant_id": None,
        "thread_id": None,
        "state": {},
        "metadata": {"team": "search"},
        "outputs": {"answer": "42"},
        "error": None,
        "timeout_seconds": 3600.0,
        "timeout_at": "2026-11-25T11:00:00Z",
        "waiting_timeout_seconds": None,
        "waiting_until": None,
        "inactivity_timeout_seconds": None,
        "active_at": None,
        "inactive_at": None,
        "usage": {
            "prompt_tokens": 300,
            "completion_tokens": 50,
            "cached_tokens": 50,
            "reasoning_tokens": 0,
            "total_tokens": 350,
        },
        "cost_usd": 0.003,
        "step_count": 2,
    }
    assert list(shape)[:2] == ["object", "id"]


def test_native_step_is_every_field_with_rfc3339_times_and_cost_as_number() -> None:
    state, step = one_step(
        ev(
            "step.failed",
            2.5,
            "step_1",
            model="gpt-4o",
            name="summarize",
            parent_step_id="step_0",
            tags=["a"],
            usage={"prompt_tokens": 9, "completion_tokens": 1, "reasoning_tokens": 1},
            cost_usd=0.0001,
            error={"code": "tool_crash", "message": "boom"},
        )
    )
    assert render_step(step, state.run, Format.NATIVE) == {
        "object": "step",
        "id": "step_1",
        "run_id": "run_42",
        "type": "message_creation",
        "name": "summarize",
        "parent_step_id": "step_0",
        "status": "failed",
        "created_at": "2026-11-25T10:00:02.500Z",
        "completed_at": None,
        "failed_at": "2026-11-25T10:00:02.500Z",
        "cancelled_at": None,
        "expired_at": None,
        "expires_at": None,
        "assistant_id": None,
        "thread_id": None,
        "step_details": None,
        "model": "gpt-4o",
        "model_handle": None,
        "provider_name": None,
        "provider_id": None,
        "provider_category": None,
        "trace_id": None,
        "request_id": None,
        "tags": ["a"],
        "metadata": {},
        "stop_reason": None,
        "usage": {"prompt_tokens": 9, "completion_tokens": 1, "cached_tokens": 0, "reasoning_tokens": 1},
        "cost_usd": 0.0001,
        "cost_source": "reported",
        "error": {"code": "tool_crash", "message": "boom"},
    }


def test_native_step_in_progress_has_null_usage_and_cost() -> None:
    state, step = step_in("in_progress")
    shape = render_step(step, state.run, Format.NATIVE)
    assert (shape["status"], shape["usage"], shape["cost_usd"], shape["error"]) == ("in_progress", None, None, None)


# --- refactor ---------------------------------------------------------------------------------


def test_refactor_reproduces_designs_two_model_example_key_for_key() -> None:
    shape = render_run(two_model_run(), Format.REFACTOR)
    expected = json.loads(DESIGN_REFACTOR_EXAMPLE)
    assert (shape, list(shape), list(shape["result"])) == (expected, list(expected), list(expected["result"]))


def test_refactor_totals_equal_the_sums_of_result_usage() -> None:
    shape = render_run(two_model_run(), Format.REFACTOR)
    usage = shape["result"]["usage"]
    assert (shape["total_input_tokens"], shape["total_cached_tokens"], shape["total_output_tokens"]) == (
        sum(u["prompt_tokens"] for u in usage),
        sum(u["cached_tokens"] for u in usage),
        sum(u["completion_tokens"] for u in usage),
    )


def test_refactor_result_is_null_while_the_run_has_no_output_usage_or_error() -> None:
    state = play(STARTED, ev("step.created", 1, "step_1", model="gpt-4o"))
    assert render_run(state, Format.REFACTOR) == {
        "id": "run_42",
        "account_id": "acct_1",
        "parent_run_id": None,
        "runnable_id": "rbl_1",
        "telemetry_span_id": None,
        "experiment_id": None,
        "experiment_candidate_id": None,
        "status": "running",
        "state": {},
        "created_by": None,
        "created_at": "2026-11-25T10:00:00Z",
        "completed_at": None,
        "failed_at": None,
        "total_input_tokens": 0,
        "total_cached_tokens": 0,
        "total_output_tokens": 0,
        "total_token_cost_usd": 0.0,
        "result": None,
        "metadata": {"team": "search"},
    }


def test_refactor_result_appears_while_running_once_a_step_reports_usage() -> None:
    state = play(
        STARTED,
        ev("step.completed", 1, "step_1", provider_name="anthropic", model="claude", usage={"prompt_tokens": 5}),
        ev("step.created", 2, "step_2", provider_name="openai", model="gpt-4o"),
    )
    assert render_run(state, Format.REFACTOR)["result"] == {
        "id": "run_42",
        "outputs": None,
        "metadata": {},
        "usage": [
            {"provider": "anthropic", "model": "claude", "prompt_tokens": 5, "cached_tokens": 0, "completion_tokens": 0}
        ],
        "error": None,
    }


def test_refactor_usage_merges_steps_of_one_model_and_counts_cost_only_steps() -> None:
    state = play(
        STARTED,
        ev("step.completed", 1, "s1", provider_name="openai", model="gpt-4o", usage={"prompt_tokens": 5}),
        ev("step.completed", 2, "s2", cost_usd=0.5),
        ev("step.completed", 3, "s3", provider_name="openai", model="gpt-4o", usage={"completion_tokens": 4}),
    )
    shape = render_run(state, Format.REFACTOR)
    assert (shape["result"]["usage"], shape["total_token_cost_usd"]) == (
        [
            {"provider": "openai", "model": "gpt-4o", "prompt_tokens": 5, "cached_tokens": 0, "completion_tokens": 4},
            {"provider": None, "model": None, "prompt_tokens": 0, "cached_tokens": 0, "completion_tokens": 0},
        ],
        0.5,
    )


def test_refactor_money_is_summed_exactly() -> None:
    state = play(STARTED, ev("step.completed", 1, "s1", cost_usd=0.1), ev("step.completed", 2, "s2", cost_usd=0.2))
    shape = render_run(state, Format.REFACTOR)
    assert (shape["total_token_cost_usd"], json.dumps(shape["total_token_cost_usd"])) == (0.3, "0.3")


def test_refactor_failed_run_has_completed_at_failed_at_and_its_error() -> None:
    state = play(STARTED, ev("run.failed", 4, error={"code": "INVALID_INPUT", "message": "no prompt"}))
    shape = render_run(state, Format.REFACTOR)
    assert (shape["status"], shape["completed_at"], shape["failed_at"], shape["result"]) == (
        "failed",
        "2026-11-25T10:00:04Z",
        "2026-11-25T10:00:04Z",
        {
            "id": "run_42",
            "outputs": None,
            "metadata": {},
            "usage": [],
            "error": {"code": "INVALID_INPUT", "message": "no prompt"},
        },
    )


@pytest.mark.parametrize(
    ("error", "rendered"),
    [
        ({"code": "RATE_LIMIT_EXCEEDED", "message": "slow"}, {"code": "RATE_LIMIT_EXCEEDED", "message": "slow"}),
        ({"code": "AUTHORIZATION_ERROR", "message": "no"}, {"code": "AUTHORIZATION_ERROR", "message": "no"}),
        (
            {"code": "tool_crash", "message": "the message"},
            {"code": "INTERNAL_ERROR", "message": "tool_crash: the message"},
        ),
        ({"code": "tool_crash"}, {"code": "INTERNAL_ERROR", "message": "tool_crash"}),
        ({"code": "timeout", "message": "late"}, {"code": "INTERNAL_ERROR", "message": "timeout: late"}),
        (None, {"code": "INTERNAL_ERROR", "message": "no error reported"}),
    ],
)
def test_refactor_run_error_keeps_refactor_codes_and_renders_others_internal_error(
    error: dict[str, str] | None, rendered: dict[str, str]
) -> None:
    failed = ev("run.failed", 4, error=error) if error is not None else ev("run.failed", 4)
    assert render_run(play(STARTED, failed), Format.REFACTOR)["result"]["error"] == rendered


def test_refactor_timed_out_run_has_error_timeout_and_no_failed_at() -> None:
    shape = render_run(play(STARTED, ev("run.timed_out", 9)), Format.REFACTOR)
    assert (shape["status"], shape["completed_at"], shape["failed_at"], shape["result"]["error"]) == (
        "timeout",
        "2026-11-25T10:00:09Z",
        None,
        {"code": "TIMEOUT", "message": "run timed out"},
    )


def test_refactor_cancelled_run_without_output_has_completed_at_and_null_result() -> None:
    shape = render_run(play(STARTED, ev("run.cancelled", 6)), Format.REFACTOR)
    assert (shape["status"], shape["completed_at"], shape["failed_at"], shape["result"]) == (
        "cancelled",
        "2026-11-25T10:00:06Z",
        None,
        None,
    )


# --- azure ------------------------------------------------------------------------------------


def test_azure_completed_step_is_the_wire_object_with_every_field() -> None:
    details = {
        "type": "tool_calls",
        "tool_calls": [{"id": "call_1", "type": "function", "function": {"name": "f", "arguments": "{}"}}],
    }
    state, step = one_step(
        ev("step.created", 1.9, "step_1", type="tool_calls", assistant_id="asst_1", metadata={"k": "v"}),
        ev("step.completed", 4.5, "step_1", step_details=details, usage={"prompt_tokens": 10, "completion_tokens": 5}),
        started=ev("run.started", 0, thread_id="thread_9"),
    )
    shape = render_step(step, state.run, Format.AZURE)
    assert (shape, list(shape)) == (
        {
            "id": "step_1",
            "object": "thread.run.step",
            "created_at": T0 + 1,
            "run_id": "run_42",
            "assistant_id": "asst_1",
            "thread_id": "thread_9",
            "type": "tool_calls",
            "status": "completed",
            "cancelled_at": None,
            "completed_at": T0 + 4,
            "expired_at": None,
            "failed_at": None,
            "last_error": None,
            "step_details": details,
            "usage": {"prompt_tokens": 10, "completion_tokens": 5, "total_tokens": 15},
            "metadata": {"k": "v"},
        },
        [
            "id",
            "object",
            "created_at",
            "run_id",
            "assistant_id",
            "thread_id",
            "type",
            "status",
            "cancelled_at",
            "completed_at",
            "expired_at",
            "failed_at",
            "last_error",
            "step_details",
            "usage",
            "metadata",
        ],
    )


def test_azure_step_in_progress_inherits_ids_and_has_null_usage_and_stamps() -> None:
    state, step = one_step(
        ev("step.created", 1, "step_1"), started=ev("run.started", 0, agent_id="asst_run", thread_id="thread_run")
    )
    assert render_step(step, state.run, Format.AZURE) == {
        "id": "step_1",
        "object": "thread.run.step",
        "created_at": T0 + 1,
        "run_id": "run_42",
        "assistant_id": "asst_run",
        "thread_id": "thread_run",
        "type": "message_creation",
        "status": "in_progress",
        "cancelled_at": None,
        "completed_at": None,
        "expired_at": None,
        "failed_at": None,
        "last_error": None,
        "step_details": {"type": "message_creation", "message_creation": {"message_id": None}},
        "usage": None,
        "metadata": {},
    }


def test_azure_ids_are_null_only_when_neither_step_nor_run_names_them() -> None:
    state, step = one_step(ev("step.created", 1, "step_1"))
    shape = render_step(step, state.run, Format.AZURE)
    assert (shape["assistant_id"], shape["thread_id"]) == (None, None)


@pytest.mark.parametrize(
    ("status", "stamps"),
    [
        ("cancelled", {"cancelled_at": T0 + 4, "completed_at": None, "expired_at": None, "failed_at": None}),
        ("expired", {"cancelled_at": None, "completed_at": None, "expired_at": T0 + 4, "failed_at": None}),
        ("failed", {"cancelled_at": None, "completed_at": None, "expired_at": None, "failed_at": T0 + 4}),
    ],
)
def test_azure_terminal_step_without_usage_has_zero_usage_and_its_one_stamp(
    status: str, stamps: dict[str, int | None]
) -> None:
    state, step = step_in(status)
    shape = render_step(step, state.run, Format.AZURE)
    assert {key: shape[key] for key in [*stamps, "usage", "step_details"]} == {
        **stamps,
        "usage": {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0},
        "step_details": {"type": "tool_calls", "tool_calls": []},
    }


def test_azure_step_closed_by_its_runs_timeout_is_expired_at_the_runs_stamp() -> None:
    state, step = one_step(ev("step.created", 1, "step_1"), ev("run.timed_out", 8))
    shape = render_step(step, state.run, Format.AZURE)
    assert (shape["status"], shape["expired_at"], shape["last_error"]) == ("expired", T0 + 8, None)


@pytest.mark.parametrize(
    ("error", "last_error"),
    [
        ({"code": "server_error", "message": "oops"}, {"code": "server_error", "message": "oops"}),
        ({"code": "rate_limit_exceeded", "message": "slow"}, {"code": "rate_limit_exceeded", "message": "slow"}),
        ({"code": "tool_crash", "message": "boom"}, {"code": "server_error", "message": "tool_crash: boom"}),
        (
            {"code": "RATE_LIMIT_EXCEEDED", "message": "x"},
            {"code": "server_error", "message": "RATE_LIMIT_EXCEEDED: x"},
        ),
        ({"code": "tool_crash"}, {"code": "server_error", "message": "tool_crash"}),
        (None, {"code": "server_error", "message": "no error reported"}),
    ],
)
def test_azure_failed_step_keeps_azure_codes_and_renders_others_server_error(
    error: dict[str, str] | None, last_error: dict[str, str]
) -> None:
    failed = ev("step.failed", 2, "step_1", error=error) if error is not None else ev("step.failed", 2, "step_1")
    state, step = one_step(failed)
    assert render_step(step, state.run, Format.AZURE)["last_error"] == last_error


@pytest.mark.parametrize("status", STATUSES)
def test_azure_shape_is_accepted_by_the_azure_sdks_run_step(status: str) -> None:
    state, step = step_in(status)
    shape = render_step(step, state.run, Format.AZURE)
    parsed = AzureRunStep(shape)
    assert (parsed.as_dict(), parsed.agent_id, parsed.status, parsed.created_at.timestamp()) == (
        shape,
        "asst_1",
        status,
        T0 + 1,
    )


# --- letta ------------------------------------------------------------------------------------


@pytest.mark.parametrize("status", STATUSES)
def test_letta_shape_is_valid_against_the_resolved_schema(status: str) -> None:
    state, step = step_in(status)
    shape = render_step(step, state.run, Format.LETTA)
    errors = [error.message for error in LETTA.iter_errors(shape)]
    assert (errors, list(shape)) == ([], list(LETTA_SCHEMA["properties"]))


def test_letta_completed_step_maps_every_field() -> None:
    state, step = one_step(
        ev(
            "step.completed",
            3,
            "step_1",
            assistant_id="agent_1",
            thread_id="thread_1",
            model="gpt-4o",
            model_handle="openai/gpt-4o",
            provider_name="openai",
            provider_id="prov_1",
            provider_category="base",
            trace_id="trace_1",
            request_id="req_1",
            tags=["x", "y"],
            metadata={"k": "v"},
            usage={"prompt_tokens": 812, "completion_tokens": 95, "cached_tokens": 512, "reasoning_tokens": 7},
            cost_usd=0.0031,
            stop_reason="stop",
        )
    )
    assert render_step(step, state.run, Format.LETTA) == {
        "id": "step_1",
        "origin": None,
        "provider_id": "prov_1",
        "run_id": "run_42",
        "agent_id": "agent_1",
        "provider_name": "openai",
        "provider_category": "base",
        "model": "gpt-4o",
        "model_handle": "openai/gpt-4o",
        "model_endpoint": None,
        "context_window_limit": None,
        "completion_tokens": 95,
        "prompt_tokens": 812,
        "total_tokens": 907,
        "cached_input_tokens": 512,
        "cache_write_tokens": None,
        "reasoning_tokens": 7,
        "completion_tokens_details": None,
        "prompt_tokens_details": None,
        "stop_reason": "end_turn",
        "tags": ["x", "y"],
        "tid": None,
        "trace_id": "trace_1",
        "request_id": "req_1",
        "messages": [],
        "feedback": None,
        "project_id": None,
        "error_type": None,
        "error_data": None,
        "status": "success",
    }


def test_letta_step_in_progress_is_pending_with_null_tokens_and_agent_from_run() -> None:
    state, step = one_step(ev("step.created", 1, "step_1"), started=ev("run.started", 0, agent_id="agent_run"))
    shape = render_step(step, state.run, Format.LETTA)
    picked = ["status", "agent_id", "prompt_tokens", "completion_tokens", "total_tokens", "cached_input_tokens"]
    assert {key: shape[key] for key in [*picked, "reasoning_tokens", "tags", "error_type", "error_data"]} == {
        "status": "pending",
        "agent_id": "agent_run",
        "prompt_tokens": None,
        "completion_tokens": None,
        "total_tokens": None,
        "cached_input_tokens": None,
        "reasoning_tokens": None,
        "tags": [],
        "error_type": None,
        "error_data": None,
    }


@pytest.mark.parametrize(
    ("status", "letta"),
    [
        ("in_progress", ("pending", None, None)),
        ("completed", ("success", None, None)),
        ("cancelled", ("cancelled", None, None)),
        ("failed", ("failed", "rate_limit_exceeded", {"code": "rate_limit_exceeded", "message": "slow down"})),
        ("expired", ("failed", "expired", {"code": "expired", "message": "step expired before it finished"})),
    ],
)
def test_letta_status_and_error_follow_the_step_status(status: str, letta: tuple[Any, ...]) -> None:
    state, step = step_in(status)
    shape = render_step(step, state.run, Format.LETTA)
    assert (shape["status"], shape["error_type"], shape["error_data"]) == letta


@pytest.mark.parametrize(
    ("error", "letta"),
    [
        ({"code": "tool_crash", "message": "boom"}, ("tool_crash", {"code": "tool_crash", "message": "boom"})),
        ({"code": "tool_crash"}, ("tool_crash", {"code": "tool_crash", "message": ""})),
        (None, ("unknown", {"code": "unknown", "message": "no error reported"})),
    ],
)
def test_letta_failed_step_keeps_the_producers_code_as_error_type(
    error: dict[str, str] | None, letta: tuple[Any, ...]
) -> None:
    failed = ev("step.failed", 2, "step_1", error=error) if error is not None else ev("step.failed", 2, "step_1")
    state, step = one_step(failed)
    shape = render_step(step, state.run, Format.LETTA)
    assert (shape["status"], shape["error_type"], shape["error_data"]) == ("failed", *letta)


@pytest.mark.parametrize(
    ("reported", "letta"),
    [
        ("stop", "end_turn"),
        ("stop_sequence", "end_turn"),
        ("length", "max_tokens_exceeded"),
        ("max_tokens", "max_tokens_exceeded"),
        ("end_turn", "end_turn"),
        ("requires_approval", "requires_approval"),
        ("tool_calls", None),
        ("STOP", None),
        (None, None),
    ],
)
def test_letta_stop_reason_is_one_of_lettas_values_or_null(reported: str | None, letta: str | None) -> None:
    data = {} if reported is None else {"stop_reason": reported}
    state, step = one_step(ev("step.completed", 2, "step_1", **data))
    assert (render_step(step, state.run, Format.LETTA)["stop_reason"], letta_stop_reason(reported)) == (letta, letta)


@pytest.mark.parametrize("status", STATUSES)
def test_letta_shape_is_accepted_by_letta_clients_step(status: str) -> None:
    state, step = step_in(status)
    shape = render_step(step, state.run, Format.LETTA)
    parsed = LettaStep.model_validate(shape)
    assert parsed.model_dump(mode="json", by_alias=True) == shape


def test_a_nested_steps_history_records_name_its_parent_step() -> None:
    raw = {"id": "e1", "type": "step.created", "run_id": "run_1", "step_id": "s2", "occurred_at": 1_764_064_800}
    result = apply_event(None, Incoming(parse_event(json.dumps(raw | {"data": {"parent_step_id": "s1"}}))), now=0)

    records = [render_transition(t) for t in result.history]

    nesting = [(r["object"], r["id"], r.get("parent_step_id")) for r in records]
    assert nesting == [("run", "run_1", None), ("step", "s2", "s1")]
