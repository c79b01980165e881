"""The lifecycles as data, and the one `transitions` Machine per object kind built from them.

Each table below is the specification: one legal edge per line, naming the event that fires
it. Creation is not an edge: an object that does not exist yet is created in its initial
status by any of its events (see docs/design.md, "Lifecycles and outcomes"), and the event is then
applied to it; each lifecycle names the one event that only creates.

Everything else that maps events to statuses is computed from these tables at import:
`TRIGGERS` (the trigger each event fires) and `TARGETS` (the status each event aims at).
"""

from collections.abc import Mapping
from dataclasses import dataclass
from enum import Enum, StrEnum
from typing import Any

from transitions import Machine

from statemachine.status import RUN_TERMINAL, STEP_TERMINAL, ObjectKind, RunStatus, StepStatus


@dataclass(frozen=True, slots=True)
class Edge:
    trigger: str
    source: StrEnum
    dest: StrEnum
    event: str  # the event type that fires the trigger


R = RunStatus
RUN_EDGES: tuple[Edge, ...] = (
    Edge("wait", R.RUNNING, R.WAITING, "run.waiting"),
    Edge("resume", R.WAITING, R.RUNNING, "run.resumed"),
    Edge("complete", R.RUNNING, R.COMPLETED, "run.completed"),  # a waiting run must resume first
    Edge("fail", R.RUNNING, R.FAILED, "run.failed"),
    Edge("fail", R.WAITING, R.FAILED, "run.failed"),
    Edge("cancel", R.RUNNING, R.CANCELLED, "run.cancelled"),
    Edge("cancel", R.WAITING, R.CANCELLED, "run.cancelled"),
    Edge("time_out", R.RUNNING, R.TIMEOUT, "run.timed_out"),
    Edge("time_out", R.WAITING, R.TIMEOUT, "run.timed_out"),
)

S = StepStatus
STEP_EDGES: tuple[Edge, ...] = (
    Edge("complete", S.IN_PROGRESS, S.COMPLETED, "step.completed"),
    Edge("fail", S.IN_PROGRESS, S.FAILED, "step.failed"),
    Edge("cancel", S.IN_PROGRESS, S.CANCELLED, "step.cancelled"),
    Edge("expire", S.IN_PROGRESS, S.EXPIRED, "step.expired"),
)


@dataclass(frozen=True, slots=True)
class Lifecycle:
    """One object kind's statuses and edges, with the Machine that enforces them."""

    kind: ObjectKind
    statuses: type[Enum]
    initial: StrEnum
    terminal: frozenset[Any]
    edges: tuple[Edge, ...]
    creating: str  # the event that only creates the object: it aims at the initial status
    signals: tuple[str, ...] = ()  # events that change no status (a heartbeat): no trigger, no target

    def machine_arguments(self) -> dict[str, Any]:
        return {
            "states": [status.value for status in self.statuses],
            "transitions": [[e.trigger, e.source.value, e.dest.value] for e in self.edges],
            "initial": self.initial.value,
            "auto_transitions": False,
        }


RUN = Lifecycle(
    ObjectKind.RUN, RunStatus, RunStatus.RUNNING, RUN_TERMINAL, RUN_EDGES, "run.started", ("run.heartbeat",)
)
STEP = Lifecycle(ObjectKind.STEP, StepStatus, StepStatus.IN_PROGRESS, STEP_TERMINAL, STEP_EDGES, "step.created")


def _by_event(lifecycles: tuple[Lifecycle, ...]) -> tuple[Mapping[str, str | None], Mapping[str, StrEnum]]:
    """Each event's trigger (None for the creating events and the signals) and the status it aims
    at (none for a signal), from the tables; an event that fires two triggers, or leads to two
    statuses, is refused."""
    triggers: dict[str, str | None] = {}
    targets: dict[str, StrEnum] = {}
    for lifecycle in lifecycles:
        triggers[lifecycle.creating] = None
        targets[lifecycle.creating] = lifecycle.initial
        triggers.update(dict.fromkeys(lifecycle.signals))
        for edge in lifecycle.edges:
            if edge.event == lifecycle.creating or edge.event in lifecycle.signals:
                raise ValueError(f"event {edge.event} only creates or signals; no edge may name it")
            if triggers.setdefault(edge.event, edge.trigger) != edge.trigger:
                raise ValueError(f"event {edge.event} fires {triggers[edge.event]} and {edge.trigger}; one is allowed")
            if targets.setdefault(edge.event, edge.dest) != edge.dest:
                raise ValueError(f"event {edge.event} leads to {targets[edge.event]} and {edge.dest}; one is allowed")
    return triggers, targets


# event type → the trigger it fires (None: it only creates), and → the status it aims at
TRIGGERS, TARGETS = _by_event((RUN, STEP))

# Built once at import and only ever queried: no models are attached, so a lookup costs
# a dict access, never a Machine construction or an add_model/remove_model per event.
_MACHINES: dict[ObjectKind, Machine] = {
    lifecycle.kind: Machine(model=None, **lifecycle.machine_arguments()) for lifecycle in (RUN, STEP)
}


def legal_target(kind: ObjectKind, trigger: str, source: str) -> str | None:
    """The status `trigger` leads to from `source`, or None when the Machine has no such edge."""
    event = _MACHINES[kind].events.get(trigger)
    if event is None:
        return None
    candidates = event.transitions.get(source)
    return str(candidates[0].dest) if candidates else None


def mermaid_diagram(lifecycle: Lifecycle) -> str:
    """The lifecycle as a mermaid state diagram, rendered by transitions itself (for the README)."""
    from transitions.extensions import GraphMachine  # diagrams only: kept off the import path

    class _Model:
        pass

    machine = GraphMachine(
        model=_Model(),
        graph_engine="mermaid",
        title=f"{lifecycle.kind} lifecycle",
        **lifecycle.machine_arguments(),
    )
    return str(machine.get_graph().draw(None))
