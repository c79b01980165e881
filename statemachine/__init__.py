"""runstate's domain: lifecycles, the event format, the one door for status changes, dialects.

Pure: no I/O, no clock, no environment. `worker` does the rest.
"""

from statemachine.apply import Incoming, Result, apply_event
from statemachine.events import Event, EventType, parse_event
from statemachine.models import Run, RunState, Step, Tombstone, Transition
from statemachine.policy import Policy
from statemachine.status import ObjectKind, Origin, Outcome, RunStatus, StepStatus

__all__ = [
    "Event",
    "EventType",
    "Incoming",
    "ObjectKind",
    "Origin",
    "Outcome",
    "Policy",
    "Result",
    "Run",
    "RunState",
    "RunStatus",
    "Step",
    "StepStatus",
    "Tombstone",
    "Transition",
    "apply_event",
    "parse_event",
]
