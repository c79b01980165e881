"""The stored objects: Run, Step, the history's Transition, and a run's whole state.

Everything is frozen: `apply_event` builds new objects and never edits the ones it was given.
Times are integer milliseconds since the epoch (see `timefmt`); money is an exact Decimal.
"""

from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from functools import cache
from typing import Any, Generic, ParamSpec, TypeVar, cast

import orjson
from pydantic import BaseModel, ConfigDict, Field
from pydantic_core import PydanticUndefined

from statemachine.events import ErrorInfo, Usage
from statemachine.status import ObjectKind, Origin, RunStatus, StepStatus


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


M = TypeVar("M", bound=_Frozen)
P = ParamSpec("P")
_set = object.__setattr__
_new = object.__new__


def trusted(cls: type[M], fields: dict[str, Any]) -> M:
    """`cls(**fields)` without validation, for objects the apply path builds from parts that are
    already valid, every field given. What `model_construct` does, without its generic work.

    Every such object shares its class's one set of field names as its "fields set": it is only
    ever read (pydantic's model_copy copies it before adding to it; `evolve` makes a new one)."""
    made = _new(cls)
    _set(made, "__dict__", fields)
    _set(made, "__pydantic_extra__", None)
    _set(made, "__pydantic_fields_set__", _all_fields(cls))
    _set(made, "__pydantic_private__", None)
    return made


@cache
def _all_fields(cls: type[BaseModel]) -> set[str]:
    return set(cls.model_fields)


def fresh(cls: type[M], given: dict[str, Any]) -> M:
    """A new object from `given` and the class's defaults, without validation: for the apply path,
    whose values come from validated events and settings (`cls(**given)` costs several times more).
    Fields keep the class's order, as validation would give them."""
    template, factories, required = _defaults(cls)
    missing = required - given.keys()
    if missing:
        raise TypeError(f"{cls.__name__}.{min(missing)} is required")
    fields = template.copy()  # every field, in order: update() keeps each key where it is
    fields.update(given)
    for name, factory in factories:
        if name not in given:
            fields[name] = factory()
    return trusted(cls, fields)


@cache
def _defaults(
    cls: type[BaseModel],
) -> tuple[dict[str, Any], tuple[tuple[str, Callable[[], Any]], ...], frozenset[str]]:
    """Every field of the class in order with its default (None where a factory or the caller
    gives it), the default factories, and the required fields."""
    template: dict[str, Any] = {}
    factories = []
    required = set()
    for name, info in cls.model_fields.items():
        template[name] = None if info.default is PydanticUndefined else info.default
        if info.default_factory is not None:
            factories.append((name, cast(Callable[[], Any], info.default_factory)))
        elif info.is_required():
            required.add(name)
    return template, tuple(factories), frozenset(required)


def evolve(model: M, update: dict[str, Any]) -> M:
    """`model.model_copy(update=update)`, made the short way: these models have no extra fields
    and no private attributes, so a copy is a merged `__dict__`. The apply path makes one or two
    per event, and pydantic's generic copy costs several times more. Like model_copy, the update
    is trusted: it comes from validated events and the lifecycle's own rules."""
    copied = _new(type(model))
    _set(copied, "__dict__", {**model.__dict__, **update})
    _set(copied, "__pydantic_extra__", None)
    named = model.__pydantic_fields_set__
    _set(copied, "__pydantic_fields_set__", named if update.keys() <= named else named | update.keys())
    _set(copied, "__pydantic_private__", None)
    return copied


class Step(_Frozen):
    id: str
    run_id: str
    type: str = "message_creation"
    name: str | None = None
    parent_step_id: str | None = None
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
    cost_source: str | None = None  # "reported", or the price table that priced it
    error: ErrorInfo | None = None


class Run(_Frozen):
    id: str
    account_id: str  # fixed when the run is created: with `id`, what identifies the run
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
    inactivity_timeout_seconds: float | None = None  # seconds of silence allowed while running; None: none
    active_at: int | None = None  # the last sign of life (ms), kept while there is an inactivity timeout
    # When the timer next looks at the silence: never after inactive_at, and left alone by events
    # while it is not due soon, so the timer index is not rewritten per event (`inactivity.arm`).
    inactivity_check_at: int | None = None

    def inactive_at(self) -> int | None:
        """When this run times out for silence if nothing arrives first; None while not running."""
        seconds, active = self.inactivity_timeout_seconds, self.active_at
        if seconds is None or active is None or self.status is not RunStatus.RUNNING:
            return None
        return active + int(seconds * 1000)

    def deadline(self) -> int | None:
        """When this run times out if nothing ends it first."""
        due, waiting = self.timeout_at, self.waiting_until
        if waiting is None or self.status is not RunStatus.WAITING:
            return due
        return waiting if due is None else min(due, waiting)


Time = TypeVar("Time", int, str)


class TransitionRecord(_Frozen, Generic[Time]):
    """One history record (docs/design.md, "Records"): the one list of its fields. Its two times are
    written as `Time`: milliseconds since the epoch where it is stored (`Transition`), RFC 3339
    text where it is shown (the dialects and the HTTP API's `HistoryRecord`)."""

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
    at: Time
    applied_at: Time
    note: str | None = None  # "late_usage" when a stale event still added its usage
    parent_step_id: str | None = None  # a step's records name the step it is nested in


# The record's times, read off its fields: the ones written as `Time`, its one type variable.
TRANSITION_TIMES = tuple(
    name for name, info in TransitionRecord.model_fields.items() if isinstance(info.annotation, TypeVar)
)


class Transition(TransitionRecord[int]):
    """One history record as `apply_event` makes it and the store keeps it."""

    def to_json(self) -> bytes:
        """`model_dump_json(by_alias=True, exclude_defaults=True)` as bytes, by orjson: every
        transition is written once, and a literal is the hot path's cheapest way (a dict built
        from `model_fields` at run time costs half as much again). A unit test holds it equal to
        pydantic's, so a field added above and not here fails it."""
        record = {
            "n": self.n,
            "object": self.object,
            "id": self.id,
            "run_id": self.run_id,
            "from": self.from_,
            "to": self.to,
            "event_id": self.event_id,
            "event_type": self.event_type,
            "origin": self.origin,
            "at": self.at,
            "applied_at": self.applied_at,
        }
        if self.note is not None:
            record["note"] = self.note
        if self.parent_step_id is not None:
            record["parent_step_id"] = self.parent_step_id
        return orjson.dumps(record)


def _unvalidated(cls: Callable[P, M]) -> Callable[P, M]:
    """`cls`'s constructor as the type checker sees it (no field unknown), built as `trusted`
    builds: without validation, from parts the apply path already holds valid, every field given."""
    model = cast(type[M], cls)
    every_field = _all_fields(model)

    def build(**fields: Any) -> M:
        if len(fields) != len(every_field):  # nothing fills defaults in: every field is given
            raise TypeError(f"{model.__name__} needs every field; missing {sorted(every_field - fields.keys())}")
        made = _new(model)  # what `trusted` does, inline: one call fewer per transition
        _set(made, "__dict__", fields)
        _set(made, "__pydantic_extra__", None)
        _set(made, "__pydantic_fields_set__", every_field)
        _set(made, "__pydantic_private__", None)
        return made

    return cast(Callable[P, M], build)


# One per transition on the apply path: its fields given by name, in the class's order.
new_transition = _unvalidated(Transition)


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
