"""The stored objects: Run, Step, the history's Transition, and a run's whole state.

Everything is frozen: `apply_event` builds new objects and never edits the ones it was given.
Times are integer milliseconds since the epoch (see `timefmt`); money is an exact Decimal.
"""

from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from statemachine.events import ErrorInfo, Usage
from statemachine.status import ObjectKind, Origin, RunStatus, StepStatus


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Step(_Frozen):
    id: str
    run_id: str
    type: str = "message_creation"
    status: StepStatus = StepStatus.IN_PROGRESS
    created_at: int
    completed_at: int | None = None
    failed_at: int | None = None
    cancelled_at: int | None = None
    expired_at: int | None = None
    expires_at: int | None = None
    assistant_id: str | None = None
    thread_id: str | None = None
    step_details: dict[str, Any] | None = None
    model: str | None = None
    model_handle: str | None = None
    provider_name: str | None = None
    provider_id: str | None = None
    provider_category: str | None = None
    trace_id: str | None = None
    request_id: str | None = None
    tags: list[str] = Field(default_factory=list)
    metadata: dict[str, str] = Field(default_factory=dict)
    stop_reason: str | None = None
    usage: Usage | None = None
    cost_usd: Decimal | None = None
    error: ErrorInfo | None = None


class Run(_Frozen):
    id: str
    account_id: str
    # False while the account is only the default: a later run.started may still name it.
    account_named: bool = False
    # False while the run exists only because a later event created it implicitly.
    started: bool = False
    status: RunStatus = RunStatus.RUNNING
    created_at: int
    completed_at: int | None = None
    failed_at: int | None = None
    cancelled_at: int | None = None
    runnable_id: str | None = None
    parent_run_id: str | None = None
    created_by: str | None = None
    telemetry_span_id: str | None = None
    experiment_id: str | None = None
    experiment_candidate_id: str | None = None
    assistant_id: str | None = None
    thread_id: str | None = None
    state: dict[str, Any] = Field(default_factory=dict)
    metadata: dict[str, str] = Field(default_factory=dict)
    outputs: dict[str, Any] | None = None
    error: ErrorInfo | None = None
    timeout_seconds: float | None = None  # the run's effective timeout; None: none
    timeout_at: int | None = None
    waiting_timeout_seconds: float | None = None  # bounds every wait, from run.started
    waiting_until: int | None = None  # the current wait's deadline

    def deadline(self) -> int | None:
        """When this run times out if nothing ends it first."""
        due = [self.timeout_at]
        if self.status is RunStatus.WAITING:
            due.append(self.waiting_until)
        present = [d for d in due if d is not None]
        return min(present) if present else None


class Transition(_Frozen):
    """One history record (DESIGN.md, "Records")."""

    model_config = ConfigDict(frozen=True, extra="forbid", populate_by_name=True)

    n: int
    object: ObjectKind
    id: str
    run_id: str
    from_: str | None = Field(alias="from")
    to: str
    event_id: str | None
    event_type: str
    origin: Origin
    at: int
    applied_at: int
    note: str | None = None  # "late_usage" when a stale event still added its usage


class RunState(_Frozen):
    """Everything stored about one run: the run, its steps in creation order, and counters."""

    run: Run
    steps: dict[str, Step] = Field(default_factory=dict)
    version: int = 0
    history_len: int = 0
    last_sequence: int = 0


@dataclass(frozen=True, slots=True)
class Tombstone:
    """What remains of a finished run after retention, or of a deleted one: late events stay stale."""

    run_id: str
    status: str


@dataclass(frozen=True, slots=True)
class Totals:
    prompt_tokens: int
    completion_tokens: int
    cached_tokens: int
    reasoning_tokens: int
    cost_usd: Decimal


def totals(steps: dict[str, Step]) -> Totals:
    """A run's totals: exact sums over its steps, each step counted once."""
    prompt = completion = cached = reasoning = 0
    cost = Decimal(0)
    for step in steps.values():
        if step.usage is not None:
            prompt += step.usage.prompt_tokens
            completion += step.usage.completion_tokens
            cached += step.usage.cached_tokens
            reasoning += step.usage.reasoning_tokens
        if step.cost_usd is not None:
            cost += step.cost_usd
    return Totals(prompt, completion, cached, reasoning, cost)
