"""Statuses, outcomes and origins: the vocabulary every other module speaks."""

from enum import StrEnum


class RunStatus(StrEnum):
    """A run's status, in re-factor's vocabulary."""

    RUNNING = "running"  # executing
    WAITING = "waiting"  # paused until the user answers
    COMPLETED = "completed"  # finished with a result
    FAILED = "failed"  # finished with an error
    CANCELLED = "cancelled"  # stopped by a user or the system
    TIMEOUT = "timeout"  # ran or waited past its deadline


RUN_TERMINAL = frozenset({RunStatus.COMPLETED, RunStatus.FAILED, RunStatus.CANCELLED, RunStatus.TIMEOUT})


class StepStatus(StrEnum):
    """A step's status, in Azure AI Agents' vocabulary."""

    IN_PROGRESS = "in_progress"  # started, not yet finished
    COMPLETED = "completed"  # finished normally
    FAILED = "failed"  # finished with an error
    CANCELLED = "cancelled"  # stopped, or closed because its run ended
    EXPIRED = "expired"  # passed its expiry, or closed because its run timed out


STEP_TERMINAL = frozenset({StepStatus.COMPLETED, StepStatus.FAILED, StepStatus.CANCELLED, StepStatus.EXPIRED})


class Outcome(StrEnum):
    """What one event did."""

    APPLIED = "applied"  # changed the run or a step
    DUPLICATE = "duplicate"  # its id was already seen on this run
    STALE = "stale"  # arrived too late to change anything (still counted)
    REJECTED = "rejected"  # illegal or not allowed; kept with its reason


class Origin(StrEnum):
    """Who caused a transition."""

    EVENT = "event"  # a producer's event
    CASCADE = "cascade"  # the run ended and closed its open steps
    DEADLINE = "deadline"  # a timeout or expiry fired
    API = "api"  # a call to runstate's own API (a cancel)


class ObjectKind(StrEnum):
    """The two kinds of object runstate keeps."""

    RUN = "run"
    STEP = "step"
