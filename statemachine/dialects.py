"""The output dialects (docs/design.md, "Output dialects"): one stored object, four spellings.

Every renderer returns a fresh JSON-ready dict (plain str, int, float, bool, None, list and
dict; enums become their values). Money is summed as Decimal and becomes a JSON number only
here, through `float()`, whose shortest repr keeps 0.3 as 0.3.

- `native` — runstate's own object, the CLI's default.
  Run: `{"object": "run"}`, then every Run field in model order except the internal
  `started` and `inactivity_check_at` (times RFC 3339, `error` `{code, message}` or null), then
  `usage` `{prompt_tokens, completion_tokens, cached_tokens, reasoning_tokens, total_tokens}`
  (sums over the steps; total = prompt + completion), `cost_usd` (a number, 0.0 when none)
  and `step_count`.
  Step: `{"object": "step"}`, then every Step field in model order (times RFC 3339,
  `usage` a dict or null, `cost_usd` a number or null, `error` `{code, message}` or null).
- `refactor` — a run as re-factor's `GET /v1/run/{id}` returns it; see `render_run`.
- `azure` — a step as Azure AI Agents' `thread.run.step`, REST wire format.
- `letta` — a step as Letta's `Step`, every schema property present.

Error codes a dialect has no word for (docs/design.md, "Errors in the output shapes") render as
the dialect's catch-all code with the original code leading the message:
`tool_crash: boom` (just `tool_crash` when the message is empty). A failure that reported no
error renders the catch-all with the message "no error reported".

Letta has no error vocabulary, so its `error_type` keeps the producer's code. Choices there:
an expired step renders `failed` with error_type `expired` and error_data
`{"code": "expired", "message": "step expired before it finished"}`; a failed step that
reported no error has error_type `unknown` and error_data
`{"code": "unknown", "message": "no error reported"}`. Token fields are null while the step
reported no usage; the `*_tokens_details` breakdowns stay null (their counts are already in
`cached_input_tokens` and `reasoning_tokens`). A stop reason is kept when it is one of
Letta's values, mapped when it is a common producer word (`stop`, `stop_sequence` →
`end_turn`; `length`, `max_tokens` → `max_tokens_exceeded`), and null otherwise.
"""

from collections.abc import Iterable
from copy import deepcopy
from decimal import Decimal
from enum import StrEnum
from typing import Any

from statemachine.events import ErrorInfo, Usage
from statemachine.models import TRANSITION_TIMES, Run, RunState, Step, Transition, totals
from statemachine.status import STEP_TERMINAL, RunStatus, StepStatus
from statemachine.timefmt import rfc3339, unix_seconds


class Format(StrEnum):
    """The shapes runstate renders its objects in."""

    NATIVE = "native"  # runstate's own full object (runs and steps)
    REFACTOR = "refactor"  # re-factor's run (runs only)
    AZURE = "azure"  # Azure AI Agents' thread.run.step (steps only)
    LETTA = "letta"  # Letta's Step (steps only)


RUN_FORMATS = (Format.NATIVE, Format.REFACTOR)
STEP_FORMATS = (Format.NATIVE, Format.AZURE, Format.LETTA)

NO_ERROR_REPORTED = "no error reported"

# re-factor's run error codes; any other code renders INTERNAL_ERROR.
REFACTOR_ERROR_CODES = frozenset(
    {"INTERNAL_ERROR", "INVALID_INPUT", "RESOURCE_NOT_FOUND", "TIMEOUT", "RATE_LIMIT_EXCEEDED", "AUTHORIZATION_ERROR"}
)
# Azure's step error codes; any other code renders server_error.
AZURE_ERROR_CODES = frozenset({"server_error", "rate_limit_exceeded"})

LETTA_STATUS = {
    StepStatus.IN_PROGRESS: "pending",
    StepStatus.COMPLETED: "success",
    StepStatus.FAILED: "failed",
    StepStatus.CANCELLED: "cancelled",
    StepStatus.EXPIRED: "failed",  # with error_type "expired"
}
# letta_client.types.StopReasonType, as the resolved schema lists it.
LETTA_STOP_REASONS = frozenset(
    {
        "end_turn",
        "error",
        "llm_api_error",
        "invalid_llm_response",
        "invalid_tool_call",
        "max_steps",
        "max_tokens_exceeded",
        "no_tool_call",
        "tool_rule",
        "cancelled",
        "insufficient_credits",
        "requires_approval",
        "context_window_overflow_in_system_prompt",
    }
)
# Common producer words (OpenAI's finish_reason, Anthropic's stop_reason) in Letta's terms.
LETTA_STOP_WORDS = {
    "stop": "end_turn",
    "stop_sequence": "end_turn",
    "length": "max_tokens_exceeded",
    "max_tokens": "max_tokens_exceeded",
}

_RUN_TIMES = ("created_at", "completed_at", "failed_at", "cancelled_at", "timeout_at", "waiting_until", "active_at")
_STEP_TIMES = ("created_at", "completed_at", "failed_at", "cancelled_at", "expired_at", "expires_at")


def render_run(state: RunState, fmt: Format) -> dict[str, Any]:
    """A run (with its steps' totals) as `native` or `refactor`; ValueError for a step-only format."""
    if fmt == Format.NATIVE:
        return _native_run(state)
    if fmt == Format.REFACTOR:
        return _refactor_run(state)
    raise ValueError(f"format {fmt} renders steps, not runs; expected one of {', '.join(RUN_FORMATS)}")


def render_step(step: Step, run: Run, fmt: Format) -> dict[str, Any]:
    """A step as `native`, `azure` or `letta`; `run` supplies the assistant and thread it inherits."""
    if fmt == Format.NATIVE:
        return _native_step(step)
    if fmt == Format.AZURE:
        return _azure_step(step, run)
    if fmt == Format.LETTA:
        return _letta_step(step, run)
    raise ValueError(f"format {fmt} renders runs, not steps; expected one of {', '.join(STEP_FORMATS)}")


def render_transition(t: Transition) -> dict[str, Any]:
    """One history record, as docs/design.md "Records" shows it: as stored, its times in RFC 3339;
    `note` and `parent_step_id` only when set."""
    record = t.model_dump(mode="json", by_alias=True, exclude_defaults=True)
    record.update({name: rfc3339(getattr(t, name)) for name in TRANSITION_TIMES})
    return record


def money(amount: Decimal) -> float:
    """An exact Decimal amount as a JSON number (the nearest float; its repr is the shortest)."""
    return float(amount)


# --- native ------------------------------------------------------------------------------


def _native_run(state: RunState) -> dict[str, Any]:
    run = state.run
    fields = run.model_dump(mode="json", exclude={"started", "inactivity_check_at"})
    fields.update({name: rfc3339(getattr(run, name)) for name in _RUN_TIMES})
    fields["inactive_at"] = rfc3339(run.inactive_at())  # when silence would time it out
    sums = totals(state.steps)
    usage = {
        "prompt_tokens": sums.prompt_tokens,
        "completion_tokens": sums.completion_tokens,
        "cached_tokens": sums.cached_tokens,
        "reasoning_tokens": sums.reasoning_tokens,
        "total_tokens": sums.prompt_tokens + sums.completion_tokens,
    }
    extra = {"usage": usage, "cost_usd": money(sums.cost_usd), "step_count": len(state.steps)}
    return {"object": "run", **fields, **extra}


def _native_step(step: Step) -> dict[str, Any]:
    fields = step.model_dump(mode="json")
    fields.update({name: rfc3339(getattr(step, name)) for name in _STEP_TIMES})
    fields["cost_usd"] = None if step.cost_usd is None else money(step.cost_usd)
    return {"object": "step", **fields}


# --- refactor ----------------------------------------------------------------------------


def _refactor_run(state: RunState) -> dict[str, Any]:
    """re-factor's run: totals over the steps, and `result` once there is output, usage or error."""
    run = state.run
    sums = totals(state.steps)
    return {
        "id": run.id,
        "account_id": run.account_id,
        "parent_run_id": run.parent_run_id,
        "runnable_id": run.runnable_id,
        "telemetry_span_id": run.telemetry_span_id,
        "experiment_id": run.experiment_id,
        "experiment_candidate_id": run.experiment_candidate_id,
        "status": run.status.value,
        "state": deepcopy(run.state),
        "created_by": run.created_by,
        "created_at": rfc3339(run.created_at),
        "completed_at": rfc3339(run.completed_at),
        "failed_at": rfc3339(run.failed_at),
        "total_input_tokens": sums.prompt_tokens,
        "total_cached_tokens": sums.cached_tokens,
        "total_output_tokens": sums.completion_tokens,
        "total_token_cost_usd": money(sums.cost_usd),
        "result": _refactor_result(state),
        "metadata": dict(run.metadata),
    }


def _refactor_result(state: RunState) -> dict[str, Any] | None:
    run = state.run
    usage = _refactor_usage(state.steps.values())
    error = _refactor_error(run)
    if run.outputs is None and not usage and error is None:
        return None
    return {"id": run.id, "outputs": deepcopy(run.outputs), "metadata": {}, "usage": usage, "error": error}


def _refactor_usage(steps: Iterable[Step]) -> list[dict[str, Any]]:
    """One entry per (provider, model), in order of first appearance among steps that used any."""
    entries: dict[tuple[str | None, str | None], dict[str, Any]] = {}
    for step in steps:
        if step.usage is None and step.cost_usd is None:
            continue
        key = (step.provider_name, step.model)
        entry = entries.setdefault(
            key,
            {"provider": key[0], "model": key[1], "prompt_tokens": 0, "cached_tokens": 0, "completion_tokens": 0},
        )
        if step.usage is not None:
            entry["prompt_tokens"] += step.usage.prompt_tokens
            entry["cached_tokens"] += step.usage.cached_tokens
            entry["completion_tokens"] += step.usage.completion_tokens
    return list(entries.values())


def _refactor_error(run: Run) -> dict[str, str] | None:
    if run.error is None:
        if run.status is RunStatus.FAILED:
            return {"code": "INTERNAL_ERROR", "message": NO_ERROR_REPORTED}
        return None
    return _known_or(run.error, REFACTOR_ERROR_CODES, "INTERNAL_ERROR")


# --- azure -------------------------------------------------------------------------------


def _azure_step(step: Step, run: Run) -> dict[str, Any]:
    """Azure AI Agents' `thread.run.step`: snake_case, Unix seconds, every field present."""
    return {
        "id": step.id,
        "object": "thread.run.step",
        "created_at": unix_seconds(step.created_at),
        "run_id": step.run_id,
        "assistant_id": step.assistant_id or run.assistant_id,
        "thread_id": step.thread_id or run.thread_id,
        "type": step.type,
        "status": step.status.value,
        "cancelled_at": unix_seconds(step.cancelled_at),
        "completed_at": unix_seconds(step.completed_at),
        "expired_at": unix_seconds(step.expired_at),
        "failed_at": unix_seconds(step.failed_at),
        "last_error": _azure_error(step),
        "step_details": _azure_details(step),
        "usage": _azure_usage(step),
        "metadata": dict(step.metadata),
    }


def _azure_error(step: Step) -> dict[str, str] | None:
    if step.status is not StepStatus.FAILED:
        return None
    if step.error is None:
        return {"code": "server_error", "message": NO_ERROR_REPORTED}
    return _known_or(step.error, AZURE_ERROR_CODES, "server_error")


def _azure_details(step: Step) -> dict[str, Any]:
    if step.step_details is not None:
        return deepcopy(step.step_details)
    if step.type == "tool_calls":
        return {"type": "tool_calls", "tool_calls": []}
    return {"type": "message_creation", "message_creation": {"message_id": None}}


def _azure_usage(step: Step) -> dict[str, int] | None:
    if step.status not in STEP_TERMINAL:
        return None
    usage = step.usage if step.usage is not None else Usage()
    return {
        "prompt_tokens": usage.prompt_tokens,
        "completion_tokens": usage.completion_tokens,
        "total_tokens": usage.prompt_tokens + usage.completion_tokens,
    }


# --- letta -------------------------------------------------------------------------------


def _letta_step(step: Step, run: Run) -> dict[str, Any]:
    """Letta's `Step`: every property of its schema, in its order; no timestamps, cost or thread."""
    usage = step.usage
    error_type, error_data = _letta_error(step)
    return {
        "id": step.id,
        "origin": None,
        "provider_id": step.provider_id,
        "run_id": step.run_id,
        "agent_id": step.assistant_id or run.assistant_id,
        "provider_name": step.provider_name,
        "provider_category": step.provider_category,
        "model": step.model,
        "model_handle": step.model_handle,
        "model_endpoint": None,
        "context_window_limit": None,
        "completion_tokens": None if usage is None else usage.completion_tokens,
        "prompt_tokens": None if usage is None else usage.prompt_tokens,
        "total_tokens": None if usage is None else usage.prompt_tokens + usage.completion_tokens,
        "cached_input_tokens": None if usage is None else usage.cached_tokens,
        "cache_write_tokens": None,
        "reasoning_tokens": None if usage is None else usage.reasoning_tokens,
        "completion_tokens_details": None,
        "prompt_tokens_details": None,
        "stop_reason": letta_stop_reason(step.stop_reason),
        "tags": list(step.tags),
        "tid": None,
        "trace_id": step.trace_id,
        "request_id": step.request_id,
        "messages": [],
        "feedback": None,
        "project_id": None,
        "error_type": error_type,
        "error_data": error_data,
        "status": LETTA_STATUS[step.status],
    }


def letta_stop_reason(reason: str | None) -> str | None:
    """A producer's stop reason as one of Letta's StopReasonType values, or None."""
    if reason is None or reason in LETTA_STOP_REASONS:
        return reason
    return LETTA_STOP_WORDS.get(reason)


def _letta_error(step: Step) -> tuple[str | None, dict[str, str] | None]:
    if step.status is StepStatus.EXPIRED:
        return "expired", {"code": "expired", "message": "step expired before it finished"}
    if step.status is not StepStatus.FAILED:
        return None, None
    if step.error is None:
        return "unknown", {"code": "unknown", "message": NO_ERROR_REPORTED}
    return step.error.code, {"code": step.error.code, "message": step.error.message}


# --- shared ------------------------------------------------------------------------------


def _known_or(error: ErrorInfo, known: frozenset[str], fallback: str) -> dict[str, str]:
    """The error as is when the dialect knows its code; else `fallback`, the code leading the message."""
    if error.code in known:
        return {"code": error.code, "message": error.message}
    message = f"{error.code}: {error.message}" if error.message else error.code
    return {"code": fallback, "message": message}
