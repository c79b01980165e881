"""The lifecycles as data, and the one `transitions` Machine per object kind built from them.

Each table below is the specification: one legal edge per line. Creation is not an
edge: an object that does not exist yet is created in its initial status (see DESIGN.md,
"Lifecycles and outcomes"), and the event is then applied to it.
"""

from dataclasses import dataclass
from enum import Enum
from typing import Any

from transitions import Machine

from statemachine.status import RUN_TERMINAL, STEP_TERMINAL, ObjectKind, RunStatus, StepStatus


@dataclass(frozen=True, slots=True)
class Edge:
    trigger: str
    source: Enum
    dest: Enum


R = RunStatus
RUN_EDGES: tuple[Edge, ...] = (
    Edge("wait", R.RUNNING, R.WAITING),
    Edge("resume", R.WAITING, R.RUNNING),
    Edge("complete", R.RUNNING, R.COMPLETED),  # a waiting run must resume first
    Edge("fail", R.RUNNING, R.FAILED),
    Edge("fail", R.WAITING, R.FAILED),
    Edge("cancel", R.RUNNING, R.CANCELLED),
    Edge("cancel", R.WAITING, R.CANCELLED),
    Edge("time_out", R.RUNNING, R.TIMEOUT),
    Edge("time_out", R.WAITING, R.TIMEOUT),
)

S = StepStatus
STEP_EDGES: tuple[Edge, ...] = (
    Edge("complete", S.IN_PROGRESS, S.COMPLETED),
    Edge("fail", S.IN_PROGRESS, S.FAILED),
    Edge("cancel", S.IN_PROGRESS, S.CANCELLED),
    Edge("expire", S.IN_PROGRESS, S.EXPIRED),
)


@dataclass(frozen=True, slots=True)
class Lifecycle:
    """One object kind's statuses and edges, with the Machine that enforces them."""

    kind: ObjectKind
    statuses: type[Enum]
    initial: Enum
    terminal: frozenset[Any]
    edges: tuple[Edge, ...]

    def machine_arguments(self) -> dict[str, Any]:
        return {
            "states": [status.value for status in self.statuses],
            "transitions": [[e.trigger, e.source.value, e.dest.value] for e in self.edges],
            "initial": self.initial.value,
            "auto_transitions": False,
        }


RUN = Lifecycle(ObjectKind.RUN, RunStatus, RunStatus.RUNNING, RUN_TERMINAL, RUN_EDGES)
STEP = Lifecycle(ObjectKind.STEP, StepStatus, StepStatus.IN_PROGRESS, STEP_TERMINAL, STEP_EDGES)

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
