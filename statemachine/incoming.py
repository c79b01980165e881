"""What goes through the door (`Incoming`: an event as a worker received it) and what comes
out (`Result`), the status each event aims at, and the default policy.

Value objects made once or more per event are NamedTuples: immutable like a frozen
dataclass, at a fraction of its construction cost.
"""

from typing import NamedTuple

from statemachine.errors import RunstateError
from statemachine.events import Event, EventType
from statemachine.lifecycle import TARGETS
from statemachine.models import RunState, Tombstone, Transition
from statemachine.policy import Policy
from statemachine.status import Origin, Outcome

# The status each event aims at, from the lifecycle tables: an event aimed at the current status is stale.
TARGET: dict[EventType, str] = {t: TARGETS[t.value] for t in EventType if t.value in TARGETS}  # not the signals

LATE_USAGE = "late_usage"
DEFAULT_POLICY = Policy()


class Incoming(NamedTuple):
    """An event as a worker received it: who sent it and through which door."""

    event: Event
    origin: Origin = Origin.EVENT
    # the run's account, decided before the event was queued (its data's, else the account
    # holding its run id, else the publisher's; the token's through the API); None: undecided
    account: str | None = None
    arrived_at: int | None = None  # ms, when it was published to runstate (None: unknown); clamped to `now`


class Result(NamedTuple):
    state: RunState | Tombstone | None
    outcome: Outcome
    history: tuple[Transition, ...] = ()
    rejection: RunstateError | None = None
    late_usage: bool = False
    remember_id: bool = True  # False when the event must leave no trace on the run
    clock_skewed: bool = False  # its occurred_at was ahead of the apply time by more than the policy allows
