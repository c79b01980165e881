"""Typed builders for runstate's events (README, "Events"), so nobody hand-writes their JSON.

Each builder returns the event as a plain dict, ready for `Client.publish`. It is given a
fresh id unless one is passed: keep the dict (or pass a derived id) to re-send the same
event, and runstate counts it once. `occurred_at` defaults to now, on this machine's clock.
Only the fields given are sent: an absent field leaves what runstate has as it was.
"""

import uuid
from collections.abc import Mapping
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, Literal, NotRequired, TypedDict

StepType = Literal["message_creation", "tool_calls"]
When = datetime | float | int | str


class Usage(TypedDict, total=False):
    """Token counts as OpenAI reports them: cached within prompt, reasoning within completion."""

    prompt_tokens: int
    completion_tokens: int
    cached_tokens: int
    reasoning_tokens: int


class Error(TypedDict):
    code: str
    message: str


class Event(TypedDict):
    id: str
    type: str
    run_id: str
    step_id: NotRequired[str]
    occurred_at: NotRequired[str | float | int]
    sequence: NotRequired[int]
    data: NotRequired[dict[str, Any]]


def new_id() -> str:
    return f"evt_{uuid.uuid4().hex}"


def _when(value: When | None) -> str | float | int:
    if value is None:
        value = datetime.now(UTC)
    if isinstance(value, datetime):
        if value.tzinfo is None:
            raise ValueError("occurred_at must be an aware datetime; naive times are ambiguous")
        return value.isoformat().replace("+00:00", "Z")
    return value


def _event(
    type_: str,
    run_id: str,
    step_id: str | None,
    id: str | None,
    occurred_at: When | None,
    sequence: int | None,
    data: Mapping[str, Any],
) -> Event:
    event: Event = {"id": id or new_id(), "type": type_, "run_id": run_id, "occurred_at": _when(occurred_at)}
    if step_id is not None:
        event["step_id"] = step_id
    if sequence is not None:
        event["sequence"] = sequence
    given = {name: value for name, value in data.items() if value is not None}
    if given:
        event["data"] = given  # a Decimal cost stays one: the client sends its exact digits
    return event


# --- runs ----------------------------------------------------------------------------


def run_started(
    run_id: str,
    *,
    id: str | None = None,
    occurred_at: When | None = None,
    sequence: int | None = None,
    account_id: str | None = None,
    runnable_id: str | None = None,
    parent_run_id: str | None = None,
    created_by: str | None = None,
    assistant_id: str | None = None,
    thread_id: str | None = None,
    timeout_seconds: float | None = None,
    waiting_timeout_seconds: float | None = None,
    state: Mapping[str, Any] | None = None,
    metadata: Mapping[str, str] | None = None,
) -> Event:
    data = {
        "account_id": account_id,
        "runnable_id": runnable_id,
        "parent_run_id": parent_run_id,
        "created_by": created_by,
        "assistant_id": assistant_id,
        "thread_id": thread_id,
        "timeout_seconds": timeout_seconds,
        "waiting_timeout_seconds": waiting_timeout_seconds,
        "state": dict(state) if state is not None else None,
        "metadata": dict(metadata) if metadata is not None else None,
    }
    return _event("run.started", run_id, None, id, occurred_at, sequence, data)


def run_waiting(
    run_id: str,
    *,
    id: str | None = None,
    occurred_at: When | None = None,
    sequence: int | None = None,
    waiting_timeout_seconds: float | None = None,
) -> Event:
    data = {"waiting_timeout_seconds": waiting_timeout_seconds}
    return _event("run.waiting", run_id, None, id, occurred_at, sequence, data)


def run_resumed(
    run_id: str, *, id: str | None = None, occurred_at: When | None = None, sequence: int | None = None
) -> Event:
    return _event("run.resumed", run_id, None, id, occurred_at, sequence, {})


def run_heartbeat(
    run_id: str, *, id: str | None = None, occurred_at: When | None = None, sequence: int | None = None
) -> Event:
    """The run is alive: it resets the run's inactivity timeout (README, "Inactivity")."""
    return _event("run.heartbeat", run_id, None, id, occurred_at, sequence, {})


def run_completed(
    run_id: str,
    *,
    id: str | None = None,
    occurred_at: When | None = None,
    sequence: int | None = None,
    outputs: Mapping[str, Any] | None = None,
) -> Event:
    data = {"outputs": dict(outputs) if outputs is not None else None}
    return _event("run.completed", run_id, None, id, occurred_at, sequence, data)


def run_failed(
    run_id: str,
    *,
    id: str | None = None,
    occurred_at: When | None = None,
    sequence: int | None = None,
    code: str | None = None,
    message: str = "",
) -> Event:
    data = {"error": Error(code=code, message=message) if code is not None else None}
    return _event("run.failed", run_id, None, id, occurred_at, sequence, data)


def run_cancelled(
    run_id: str, *, id: str | None = None, occurred_at: When | None = None, sequence: int | None = None
) -> Event:
    return _event("run.cancelled", run_id, None, id, occurred_at, sequence, {})


def run_timed_out(
    run_id: str, *, id: str | None = None, occurred_at: When | None = None, sequence: int | None = None
) -> Event:
    return _event("run.timed_out", run_id, None, id, occurred_at, sequence, {})


# --- steps ---------------------------------------------------------------------------


def _step_data(
    type: StepType | None,
    name: str | None,
    parent_step_id: str | None,
    model: str | None,
    provider_name: str | None,
    assistant_id: str | None,
    thread_id: str | None,
    step_details: Mapping[str, Any] | None,
    metadata: Mapping[str, str] | None,
) -> dict[str, Any]:
    return {
        "type": type,
        "name": name,
        "parent_step_id": parent_step_id,
        "model": model,
        "provider_name": provider_name,
        "assistant_id": assistant_id,
        "thread_id": thread_id,
        "step_details": dict(step_details) if step_details is not None else None,
        "metadata": dict(metadata) if metadata is not None else None,
    }


def step_created(
    run_id: str,
    step_id: str,
    *,
    id: str | None = None,
    occurred_at: When | None = None,
    sequence: int | None = None,
    type: StepType | None = None,
    name: str | None = None,
    parent_step_id: str | None = None,
    model: str | None = None,
    provider_name: str | None = None,
    assistant_id: str | None = None,
    thread_id: str | None = None,
    step_details: Mapping[str, Any] | None = None,
    metadata: Mapping[str, str] | None = None,
) -> Event:
    data = _step_data(type, name, parent_step_id, model, provider_name, assistant_id, thread_id, step_details, metadata)
    return _event("step.created", run_id, step_id, id, occurred_at, sequence, data)


def step_completed(
    run_id: str,
    step_id: str,
    *,
    id: str | None = None,
    occurred_at: When | None = None,
    sequence: int | None = None,
    usage: Usage | None = None,
    cost_usd: Decimal | float | None = None,
    stop_reason: str | None = None,
    type: StepType | None = None,
    name: str | None = None,
    parent_step_id: str | None = None,
    model: str | None = None,
    provider_name: str | None = None,
    assistant_id: str | None = None,
    thread_id: str | None = None,
    step_details: Mapping[str, Any] | None = None,
    metadata: Mapping[str, str] | None = None,
) -> Event:
    """Without `cost_usd`, runstate prices `usage` by `model` itself (README, "Costs")."""
    data = _step_data(type, name, parent_step_id, model, provider_name, assistant_id, thread_id, step_details, metadata)
    data.update(usage=dict(usage) if usage is not None else None, cost_usd=cost_usd, stop_reason=stop_reason)
    return _event("step.completed", run_id, step_id, id, occurred_at, sequence, data)


def step_failed(
    run_id: str,
    step_id: str,
    *,
    id: str | None = None,
    occurred_at: When | None = None,
    sequence: int | None = None,
    code: str | None = None,
    message: str = "",
    usage: Usage | None = None,
    cost_usd: Decimal | float | None = None,
    type: StepType | None = None,
    name: str | None = None,
    parent_step_id: str | None = None,
    model: str | None = None,
    provider_name: str | None = None,
    step_details: Mapping[str, Any] | None = None,
    metadata: Mapping[str, str] | None = None,
) -> Event:
    data = _step_data(type, name, parent_step_id, model, provider_name, None, None, step_details, metadata)
    data.update(usage=dict(usage) if usage is not None else None, cost_usd=cost_usd)
    data["error"] = Error(code=code, message=message) if code is not None else None
    return _event("step.failed", run_id, step_id, id, occurred_at, sequence, data)


def step_cancelled(
    run_id: str, step_id: str, *, id: str | None = None, occurred_at: When | None = None, sequence: int | None = None
) -> Event:
    return _event("step.cancelled", run_id, step_id, id, occurred_at, sequence, {})


def step_expired(
    run_id: str, step_id: str, *, id: str | None = None, occurred_at: When | None = None, sequence: int | None = None
) -> Event:
    return _event("step.expired", run_id, step_id, id, occurred_at, sequence, {})
