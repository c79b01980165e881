"""The lifecycle tables are the one place that says which event fires which trigger and where it
leads: the event types, the triggers and the targets are all read off them at import."""

import pytest

from statemachine.apply import TARGET
from statemachine.events import EventType
from statemachine.lifecycle import RUN, STEP, TARGETS, TRIGGERS, Edge, Lifecycle, _by_event
from statemachine.status import ObjectKind, RunStatus, StepStatus


def test_the_tables_name_every_event_type_and_nothing_else() -> None:
    named = {RUN.creating, STEP.creating} | {e.event for e in RUN.edges + STEP.edges}
    signals = set(RUN.signals + STEP.signals)
    assert named | signals == set(EventType) == TRIGGERS.keys()
    assert named == TARGETS.keys()  # a signal aims at no status
    assert signals == {"run.heartbeat"}


def test_every_event_aims_at_the_status_its_edges_lead_to() -> None:
    assert TARGET == {
        EventType.RUN_STARTED: RunStatus.RUNNING,
        EventType.RUN_WAITING: RunStatus.WAITING,
        EventType.RUN_RESUMED: RunStatus.RUNNING,
        EventType.RUN_COMPLETED: RunStatus.COMPLETED,
        EventType.RUN_FAILED: RunStatus.FAILED,
        EventType.RUN_CANCELLED: RunStatus.CANCELLED,
        EventType.RUN_TIMED_OUT: RunStatus.TIMEOUT,
        EventType.STEP_CREATED: StepStatus.IN_PROGRESS,
        EventType.STEP_COMPLETED: StepStatus.COMPLETED,
        EventType.STEP_FAILED: StepStatus.FAILED,
        EventType.STEP_CANCELLED: StepStatus.CANCELLED,
        EventType.STEP_EXPIRED: StepStatus.EXPIRED,
    }


def test_every_event_fires_the_trigger_of_its_edges_and_creating_events_fire_none() -> None:
    assert {t.value: t.trigger for t in EventType} == {
        "run.started": None,
        "run.waiting": "wait",
        "run.resumed": "resume",
        "run.completed": "complete",
        "run.failed": "fail",
        "run.cancelled": "cancel",
        "run.timed_out": "time_out",
        "run.heartbeat": None,
        "step.created": None,
        "step.completed": "complete",
        "step.failed": "fail",
        "step.cancelled": "cancel",
        "step.expired": "expire",
    }


def _lifecycle(*edges: Edge) -> Lifecycle:
    return Lifecycle(ObjectKind.RUN, RunStatus, RunStatus.RUNNING, frozenset(), edges, "run.started")


@pytest.mark.parametrize(
    ("edges", "message"),
    [
        (
            (
                Edge("fail", RunStatus.RUNNING, RunStatus.FAILED, "run.failed"),
                Edge("cancel", RunStatus.WAITING, RunStatus.FAILED, "run.failed"),
            ),
            "event run.failed fires fail and cancel; one is allowed",
        ),
        (
            (
                Edge("fail", RunStatus.RUNNING, RunStatus.FAILED, "run.failed"),
                Edge("fail", RunStatus.WAITING, RunStatus.CANCELLED, "run.failed"),
            ),
            "event run.failed leads to failed and cancelled; one is allowed",
        ),
        (
            (Edge("start", RunStatus.WAITING, RunStatus.RUNNING, "run.started"),),
            "event run.started only creates or signals; no edge may name it",
        ),
    ],
    ids=["two triggers", "two targets", "an edge for the creating event"],
)
def test_a_table_that_gives_an_event_two_meanings_is_refused(edges: tuple[Edge, ...], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        _by_event((_lifecycle(*edges),))
