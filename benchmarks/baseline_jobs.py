"""The baselines' RQ jobs: RQ's own ceiling, and the naive way to build runstate on RQ.

`noop` is one job per event that does nothing: the most RQ can do. `naive` is what a first
version would do per event: an RQ job, a new `transitions` Machine for the object, one
HGETALL and one HSET — no ordering, no history, no dedupe (and with two workers it loses
updates), so it is a floor for the per-event design, not a competitor.
"""

from typing import Any

from rq import get_current_job
from transitions import Machine, MachineError

from statemachine.events import EventType
from statemachine.lifecycle import RUN, STEP


def noop(_event: object) -> None:
    return None


class _Object:
    state: str


def naive(event: dict[str, Any]) -> None:
    job = get_current_job()
    assert job is not None
    redis = job.connection
    event_type = EventType(event["type"])
    lifecycle = RUN if event_type.kind == "run" else STEP
    key = f"naive:{event['run_id']}:{event.get('step_id', '')}"
    stored = redis.hgetall(key)
    model = _Object()
    initial = str(stored[b"status"], "utf-8") if stored else lifecycle.initial.value  # type: ignore[arg-type]
    Machine(model=model, **{**lifecycle.machine_arguments(), "initial": initial})
    if stored and event_type.trigger is not None:
        try:
            model.trigger(event_type.trigger)  # type: ignore[attr-defined]
        except MachineError:
            return
    redis.hset(key, mapping={"status": model.state, "last_event": event["id"]})
