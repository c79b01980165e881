"""One error root, and a typed leaf for every reason runstate refuses something.

A worker never raises these at a caller: `apply_event` returns them as the reason an
event was rejected, and the store keeps them in the rejected records. Each renders as
`<code>: <detail>`, the spelling docs/design.md's rejected records use.
"""

from dataclasses import dataclass


class RunstateError(Exception):
    """Root of runstate's own errors."""

    code = "error"

    @property
    def detail(self) -> str:
        raise NotImplementedError

    def __str__(self) -> str:
        return f"{self.code}: {self.detail}"


@dataclass(eq=False)
class InvalidEvent(RunstateError):
    """Raised when an event breaks the event format; `problems` name each field and rule."""

    problems: tuple[str, ...]
    code = "invalid_event"

    @property
    def detail(self) -> str:
        return "; ".join(self.problems)


@dataclass(eq=False)
class IllegalTransition(RunstateError):
    """Returned when the lifecycle has no edge for the event from the object's status."""

    run_id: str
    object_id: str
    status: str
    event_type: str
    code = "illegal_transition"

    @property
    def detail(self) -> str:
        return f"{self.event_type} in status {self.status}"


@dataclass(eq=False)
class AccountMismatch(RunstateError):
    """Returned when an event names an account other than the one its run belongs to."""

    run_id: str
    event_account: str
    code = "account_mismatch"

    @property
    def detail(self) -> str:
        # The run's own account is not named: the answer must not reveal it.
        return f"run {self.run_id} does not belong to account {self.event_account}"


@dataclass(eq=False)
class PoisonedJob(RunstateError):
    """Raised when a queue entry is not runstate's own job or cannot be decoded."""

    job_id: str
    why: str
    code = "poisoned_job"

    @property
    def detail(self) -> str:
        return f"job {self.job_id}: {self.why}"
