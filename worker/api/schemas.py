"""What the HTTP API answers, as models for its OpenAPI document.

The routes render with `statemachine.dialects` and return plain dicts; these models only
describe those shapes (schemathesis checks every answer against them), so a field is
required wherever the renderer always writes it, null or not.
"""

from typing import Any, Generic, Literal, TypeVar

from pydantic import BaseModel, ConfigDict

from statemachine.models import TransitionRecord
from statemachine.status import RunStatus
from worker.api.errors import Rejection

T = TypeVar("T")


class Accepted(BaseModel):
    accepted: int  # events queued
    rejected: list[Rejection]  # the others, with why


class UsageEntry(BaseModel):
    provider: str | None
    model: str | None
    prompt_tokens: int
    cached_tokens: int
    completion_tokens: int


class RunError(BaseModel):
    code: str
    message: str


class RunResult(BaseModel):
    id: str
    outputs: dict[str, Any] | None
    metadata: dict[str, Any]
    usage: list[UsageEntry]
    error: RunError | None


class RefactorRun(BaseModel):
    """The run as re-factor's GET /v1/run/{id} returns it."""

    id: str
    account_id: str
    parent_run_id: str | None
    runnable_id: str | None
    telemetry_span_id: str | None
    experiment_id: str | None
    experiment_candidate_id: str | None
    status: RunStatus
    state: dict[str, Any]
    created_by: str | None
    created_at: str
    completed_at: str | None
    failed_at: str | None
    total_input_tokens: int
    total_cached_tokens: int
    total_output_tokens: int
    total_token_cost_usd: float
    result: RunResult | None
    metadata: dict[str, str]


class Listing(BaseModel, Generic[T]):
    """`{"object": "list", "data": [...]}`: how every list is answered."""

    object: Literal["list"]
    data: list[T]


class Page(Listing[T]):
    """One page of a longer list: `after` its `last_id` asks for the next one."""

    first_id: str | None
    last_id: str | None
    has_more: bool


# The lists are subclasses, not bare `Page[...]`s: each keeps its own name and description in
# the document, where pydantic would name a parametrized model `Page_RefactorRun_`.


class RunList(Page[RefactorRun]):
    """The account's runs, oldest first; `after` the last id of one page gives the next."""


class StepList(Page[dict[str, Any]]):
    """Steps in creation order, in the asked format (azure `thread.run.step`, Letta `Step` or native)."""


class HistoryRecord(TransitionRecord[str]):
    # The domain's record with its times in RFC 3339, as `render_transition` writes them. The
    # document describes what an answer holds; it does not forbid more (as the domain does).
    model_config = ConfigDict(extra="ignore")


class History(Listing[HistoryRecord]):
    pass


class CancelQueued(BaseModel):
    """A `run.cancelled` event (origin `api`) is queued; a worker applies it."""

    run_id: str
    event_id: str  # api_cancel_…, as the run's history will name it
    status: Literal["queued"]


class Webhook(BaseModel):
    id: str
    account: str
    url: str
    events: list[str]
    enabled: bool
    disabled_reason: str | None
    failing_since: int | None  # ms since the epoch of the first failure since the last success
    created_at: int  # ms since the epoch
    secret: str  # whsec_…: whole only in the answer that creates it, masked afterwards


class WebhookList(Listing[Webhook]):
    pass


class Health(BaseModel):
    status: Literal["ok"]
