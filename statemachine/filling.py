"""What an event's data fills in on the run or step it creates or reaches, and the words a
transition's record uses: helpers of `statemachine.work`, each a pure function of its inputs."""

from typing import Any

from statemachine.events import Event, EventType, RunStarted, StepCompleted, StepFailed, StepPlain
from statemachine.incoming import Incoming
from statemachine.models import Run, evolve
from statemachine.policy import deadline_after, effective_seconds
from statemachine.status import Origin, RunStatus


def cause(event: Event | None, fallback: EventType) -> tuple[str | None, str]:
    return (event.id, event.type) if event is not None else (None, fallback.value)


def timeout_message(run: Run, origin: Origin) -> str:
    if origin is Origin.DEADLINE and run.status is RunStatus.WAITING and run.waiting_until == run.deadline():
        return "run waited for input longer than its waiting timeout"
    if origin is Origin.DEADLINE and run.timeout_seconds is not None:
        return f"run exceeded its timeout of {run.timeout_seconds:g} s"
    return "run timed out"


def created_earlier(run: Run, at: int) -> Run:
    """A run created implicitly by a later-stamped event starts when its run.started says, if that
    is earlier (an OTLP root span, sent last, starts before its children); never later. Its
    timeout counts from the new start; the history keeps the creation record as it was written."""
    if at >= run.created_at:
        return run
    return evolve(run, {"created_at": at, "timeout_at": deadline_after(at, run.timeout_seconds)})


def fill_in(run: Run, event: RunStarted) -> Run:
    """The data a run.started carries, onto a run it creates or that an earlier event created
    (not its account: that was fixed when the run was created, and `_account_mismatch` has
    refused an event naming another: statemachine.apply)."""
    data = event.data
    given = data.model_fields_set
    update: dict[str, Any] = {"started": True}
    for name in (
        "runnable_id",
        "parent_run_id",
        "created_by",
        "telemetry_span_id",
        "experiment_id",
        "experiment_candidate_id",
        "assistant_id",
        "thread_id",
        "state",
        "metadata",
    ):
        value = getattr(data, name)
        if value is not None:
            update[name] = value
    if "timeout_seconds" in given:
        update["timeout_seconds"] = data.timeout_seconds
        update["timeout_at"] = deadline_after(run.created_at, data.timeout_seconds)
    if "waiting_timeout_seconds" in given:
        update["waiting_timeout_seconds"] = data.waiting_timeout_seconds
    if "inactivity_timeout_seconds" in given:
        update["inactivity_timeout_seconds"] = effective_seconds(data.inactivity_timeout_seconds)
    return evolve(run, update)


_STEP_FIELDS = frozenset(
    {
        "type",
        "name",
        "parent_step_id",
        "assistant_id",
        "thread_id",
        "model",
        "model_handle",
        "provider_name",
        "provider_id",
        "provider_category",
        "trace_id",
        "request_id",
        "tags",
        "metadata",
    }
)


def step_fields(event: StepPlain | StepCompleted | StepFailed) -> dict[str, Any]:
    """The descriptive fields a step event names; absent ones leave the step as it was."""
    data = event.data
    update: dict[str, Any] = {}
    for name in data.model_fields_set & _STEP_FIELDS:  # the ones the producer sent: usually a few of fourteen
        value = getattr(data, name)
        if value is not None:
            update[name] = value
    if data.step_details is not None:
        update["step_details"] = data.step_details.model_dump()
    return update


def named_account(incoming: Incoming) -> str | None:
    event = incoming.event
    in_data = event.data.account_id if isinstance(event, RunStarted) else None
    return in_data if in_data is not None else incoming.account
