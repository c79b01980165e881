"""The event format (docs/design.md, "Events"): one pydantic model per event family, strict and bounded.

`parse_event` is the only way in: it takes one JSON text and returns an `Event` or raises
`InvalidEvent` whose problems name each field and the rule it breaks.
"""

from enum import StrEnum
from typing import Annotated, Any, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError, model_validator

from statemachine.bounds import (
    KEY_ID_PATTERN,
    MAX_JSON_DEPTH,
    CostUsd,
    EventId,
    JsonObject,
    KeyId,
    Metadata,
    Name,
    Seconds,
    Tags,
    Text,
    Timestamp,
    Tokens,
    finite_json,
    key_id_problem,
)
from statemachine.errors import InvalidEvent
from statemachine.lifecycle import TRIGGERS
from statemachine.status import ObjectKind

MAX_EVENT_BYTES = 262_144
MAX_SEQUENCE = 2**53


class EventType(StrEnum):
    """Every event a producer (or runstate itself) may publish."""

    RUN_STARTED = "run.started"
    RUN_WAITING = "run.waiting"
    RUN_RESUMED = "run.resumed"
    RUN_COMPLETED = "run.completed"
    RUN_FAILED = "run.failed"
    RUN_CANCELLED = "run.cancelled"
    RUN_TIMED_OUT = "run.timed_out"
    RUN_HEARTBEAT = "run.heartbeat"  # the run is alive: moves its inactivity clock, nothing else
    STEP_CREATED = "step.created"
    STEP_COMPLETED = "step.completed"
    STEP_FAILED = "step.failed"
    STEP_CANCELLED = "step.cancelled"
    STEP_EXPIRED = "step.expired"

    @property
    def kind(self) -> ObjectKind:
        return _KINDS[self]

    @property
    def trigger(self) -> str | None:
        """The lifecycle trigger this event fires; None for the events that only create."""
        return _TRIGGERS[self]


# Read off the lifecycle tables, the one place that says which event fires which trigger.
_TRIGGERS: dict[EventType, str | None] = {t: TRIGGERS[t.value] for t in EventType}


_KINDS = {t: ObjectKind.RUN if t.startswith("run.") else ObjectKind.STEP for t in EventType}
_BY_NAME = {t.value: t for t in EventType}  # a dict lookup: the hot path asks for it per event


class _Strict(BaseModel):
    model_config = ConfigDict(strict=True, extra="forbid", frozen=True)


class Usage(_Strict):
    """Token counts as OpenAI reports them: cached within prompt, reasoning within completion."""

    prompt_tokens: Tokens = 0
    completion_tokens: Tokens = 0
    cached_tokens: Tokens = 0
    reasoning_tokens: Tokens = 0


class ErrorInfo(_Strict):
    code: Annotated[str, Field(min_length=1, max_length=64)]
    message: Text = ""


class StepDetails(_Strict):
    """Azure's RunStepDetails: the type, then the matching body, kept as reported."""

    model_config = ConfigDict(strict=True, extra="allow", frozen=True)
    type: Literal["message_creation", "tool_calls"]

    @model_validator(mode="after")
    def _bounded(self) -> Self:
        finite_json(self.model_dump())  # free-form, but finite and no deeper than any JSON object
        return self


# --- data, per event family -------------------------------------------------------------


class RunStartedData(_Strict):
    account_id: KeyId | None = None
    runnable_id: Name | None = None
    parent_run_id: KeyId | None = None
    created_by: Name | None = None
    telemetry_span_id: Name | None = None
    experiment_id: Name | None = None
    experiment_candidate_id: Name | None = None
    assistant_id: Name | None = Field(default=None, validation_alias="agent_id")
    thread_id: Name | None = None
    timeout_seconds: Seconds = None
    waiting_timeout_seconds: Seconds = None
    inactivity_timeout_seconds: Seconds = None
    state: JsonObject | None = None
    metadata: Metadata | None = None

    model_config = ConfigDict(strict=True, extra="forbid", frozen=True, validate_by_name=True)


class RunWaitingData(_Strict):
    waiting_timeout_seconds: Seconds = None


class RunCompletedData(_Strict):
    outputs: JsonObject | None = None


class RunFailedData(_Strict):
    error: ErrorInfo | None = None


class NoData(_Strict):
    pass


class StepData(_Strict):
    """What any step event may carry: the fields that describe the step when it is created."""

    type: Literal["message_creation", "tool_calls"] | None = None
    name: Name | None = None  # the tool's or the agent's name
    parent_step_id: KeyId | None = None  # the step this one ran inside (an agent or tool step that called a model)
    assistant_id: Name | None = None
    thread_id: Name | None = None
    step_details: StepDetails | None = None
    model: Name | None = None
    model_handle: Name | None = None
    provider_name: Name | None = None
    provider_id: Name | None = None
    provider_category: Name | None = None
    trace_id: Name | None = None
    request_id: Name | None = None
    tags: Tags | None = None
    expires_at: Timestamp | None = None
    metadata: Metadata | None = None


class StepCompletedData(StepData):
    usage: Usage | None = None
    cost_usd: CostUsd | None = None
    stop_reason: Annotated[str, Field(max_length=64)] | None = None


class StepFailedData(StepCompletedData):
    error: ErrorInfo | None = None


# --- the envelope, per event family -----------------------------------------------------


class _Envelope(_Strict):
    id: EventId
    run_id: KeyId
    occurred_at: Timestamp | None = None
    sequence: Annotated[int, Field(ge=1, le=MAX_SEQUENCE)] | None = None

    @property
    def event_type(self) -> EventType:
        return _BY_NAME[self.type]  # type: ignore[attr-defined]


class RunStarted(_Envelope):
    type: Literal["run.started"]
    data: RunStartedData = RunStartedData()


class RunWaiting(_Envelope):
    type: Literal["run.waiting"]
    data: RunWaitingData = RunWaitingData()


class RunCompleted(_Envelope):
    type: Literal["run.completed"]
    data: RunCompletedData = RunCompletedData()


class RunFailed(_Envelope):
    type: Literal["run.failed"]
    data: RunFailedData = RunFailedData()


class RunPlain(_Envelope):
    type: Literal["run.resumed", "run.cancelled", "run.timed_out", "run.heartbeat"]
    data: NoData = NoData()


class _StepEnvelope(_Envelope):
    step_id: KeyId


class StepPlain(_StepEnvelope):
    type: Literal["step.created", "step.cancelled", "step.expired"]
    data: StepData = StepData()


class StepCompleted(_StepEnvelope):
    type: Literal["step.completed"]
    data: StepCompletedData = StepCompletedData()


class StepFailed(_StepEnvelope):
    type: Literal["step.failed"]
    data: StepFailedData = StepFailedData()


Event = RunStarted | RunWaiting | RunCompleted | RunFailed | RunPlain | StepPlain | StepCompleted | StepFailed
RunEvent = RunStarted | RunWaiting | RunCompleted | RunFailed | RunPlain
StepEvent = StepPlain | StepCompleted | StepFailed

_EVENT = TypeAdapter[Event](Annotated[Event, Field(discriminator="type")])


def parse_event(text: str | bytes) -> Event:
    """One event from its JSON text; raises InvalidEvent naming every field and rule it breaks."""
    size = len(text.encode("utf-8", "surrogatepass") if isinstance(text, str) else text)
    if size > MAX_EVENT_BYTES:
        raise InvalidEvent((f"event is {size} bytes; at most {MAX_EVENT_BYTES} are allowed",))
    try:
        return _EVENT.validate_json(text)
    except ValidationError as exc:
        raise InvalidEvent(tuple(_describe(error) for error in exc.errors(include_url=False))) from None


def _describe(error: Any) -> str:
    """`data.metadata: metadata has 17 keys; at most 16 are allowed` from one pydantic error."""
    loc = [str(part) for part in error["loc"]]
    if loc and "." in loc[0] and loc[0][:4] in ("run.", "step"):
        loc = loc[1:]  # the discriminator tag pydantic puts first
    message = str(error["msg"]).removeprefix("Value error, ")
    kind = error["type"]
    if kind == "union_tag_invalid":
        return f"type: {error['ctx']['tag']!r} is not an event type; expected one of {', '.join(EventType)}"
    if kind == "union_tag_not_found":
        return "type: field required; expected one of " + ", ".join(EventType)
    if kind == "extra_forbidden":
        return f"{'.'.join(loc)}: unknown field; not allowed here"
    if kind == "json_invalid" and "recursion limit" in error["ctx"]["error"]:
        return f"event nests too deep; its data may nest at most {MAX_JSON_DEPTH} levels"
    if kind == "json_invalid":
        return f"not valid JSON: {error['ctx']['error']}"
    if kind == "model_type" and not loc:
        return "event must be a JSON object"
    if kind == "string_pattern_mismatch" and error["ctx"]["pattern"] == KEY_ID_PATTERN:
        message = key_id_problem(error["input"])
    return f"{'.'.join(loc) or 'event'}: {message}"
