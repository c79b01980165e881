"""The one door for every status change: `apply_event`.

It takes a run's current state (or None, or a Tombstone), one event and the time, and
returns the new state, the outcome and the history records it adds. DESIGN.md's outcome
tables are decided by `lifecycle.legal_target`; this module adds what the tables do
not show: implicit creation, the run.started fill-in, deadlines that passed before the
event, cascades, late usage and clamping.
"""

from collections.abc import Set
from typing import Any, NamedTuple

from statemachine.errors import AccountMismatch, IllegalTransition, RunstateError
from statemachine.events import (
    ErrorInfo,
    Event,
    EventType,
    RunCompleted,
    RunFailed,
    RunStarted,
    RunWaiting,
    StepCompleted,
    StepFailed,
    StepPlain,
)
from statemachine.lifecycle import RUN, STEP, TARGETS, legal_target
from statemachine.models import Run, RunState, Step, Tombstone, Transition, evolve, fresh, new_transition, trusted
from statemachine.policy import Policy, deadline_after
from statemachine.status import ObjectKind, Origin, Outcome, RunStatus, StepStatus

# The status each event aims at, from the lifecycle tables: an event aimed at the current status is stale.
TARGET: dict[EventType, str] = {t: TARGETS[t.value] for t in EventType}

LATE_USAGE = "late_usage"
DEFAULT_POLICY = Policy()


# Value objects made once or more per event are NamedTuples: immutable like a frozen
# dataclass, at a fraction of its construction cost.


class Incoming(NamedTuple):
    """An event as a worker received it: who sent it and through which door."""

    event: Event
    origin: Origin = Origin.EVENT
    account: str | None = None  # the API token's account, when it came through the API


class Result(NamedTuple):
    state: RunState | Tombstone | None
    outcome: Outcome
    history: tuple[Transition, ...] = ()
    rejection: RunstateError | None = None
    late_usage: bool = False
    remember_id: bool = True  # False when the event must leave no trace on the run


def apply_event(
    current: RunState | Tombstone | None,
    incoming: Incoming,
    *,
    now: int,
    seen: Set[str] = frozenset(),
    policy: Policy = DEFAULT_POLICY,
) -> Result:
    """Apply one event to a run at time `now` (ms); the input state is never modified."""
    event = incoming.event
    if isinstance(current, Tombstone):
        return Result(current, Outcome.STALE, remember_id=False)
    mismatch = _account_mismatch(current, incoming)
    if mismatch is not None:
        return Result(current, Outcome.REJECTED, rejection=mismatch, remember_id=False)
    if current is not None:
        if event.id in seen:
            return Result(current, Outcome.DUPLICATE, remember_id=False)
        if event.sequence is not None and event.sequence <= current.last_sequence:
            return Result(current, Outcome.STALE)
    work = _Work(current, incoming, now, policy)
    outcome = work.run_event() if event.event_type.kind is ObjectKind.RUN else work.step_event()
    return work.result(outcome)


def _account_mismatch(current: RunState | None, incoming: Incoming) -> AccountMismatch | None:
    """An event may name no account, or only the run's (a token and its data must agree)."""
    event = incoming.event
    in_data = event.data.account_id if isinstance(event, RunStarted) else None
    if incoming.account is not None and in_data not in (None, incoming.account):
        return AccountMismatch(event.run_id, in_data)
    named = _named_account(incoming)
    if current is None or named is None or named == current.run.account_id or _may_adopt(current.run, event):
        return None
    return AccountMismatch(event.run_id, named)


def _named_account(incoming: Incoming) -> str | None:
    event = incoming.event
    in_data = event.data.account_id if isinstance(event, RunStarted) else None
    return in_data if in_data is not None else incoming.account


def _may_adopt(run: Run, event: Event) -> bool:
    """A run created implicitly under the default account takes the account its run.started names."""
    return isinstance(event, RunStarted) and not run.started and not run.account_named


class _Work:
    """The changes one event makes, collected before they become the new RunState.

    A plain class with slots: one is made per event, so its construction is kept cheap."""

    __slots__ = (
        "at",
        "current",
        "event",
        "history",
        "incoming",
        "late_usage",
        "now",
        "policy",
        "rejection",
        "run",
        "steps",
    )

    def __init__(self, current: RunState | None, incoming: Incoming, now: int, policy: Policy) -> None:
        self.current = current
        self.incoming = incoming
        self.event: Event = incoming.event
        self.now = now
        # the event's time: when it occurred, else when it is applied
        self.at: int = self.event.occurred_at if self.event.occurred_at is not None else now
        self.policy = policy
        self.run: Run | None = current.run if current is not None else None
        self.steps: dict[str, Step] = dict(current.steps) if current is not None else {}
        self.history: list[Transition] = []
        self.rejection: RunstateError | None = None
        self.late_usage = False

    # --- runs --------------------------------------------------------------------------

    def run_event(self) -> Outcome:
        event = self.event
        if self.run is None:
            self._create_run()
            if TARGET[event.event_type] == RunStatus.RUNNING:  # run.started, run.resumed: creating is the change
                return Outcome.APPLIED
        else:
            self._fire_run_deadline_before(self.at)
        run = self._the_run()
        if isinstance(event, RunStarted):
            if not run.started:
                self.run = _fill_in(run, event, self.policy, _named_account(self.incoming))
            return Outcome.STALE
        return self._transition_run(event, origin=self.incoming.origin)

    def _the_run(self) -> Run:
        assert self.run is not None
        return self.run

    def _create_run(self) -> None:
        event = self.event
        named = _named_account(self.incoming)
        timeout = self.policy.default_run_timeout
        given = {
            "id": event.run_id,
            "account_id": named or self.policy.default_account,
            "account_named": named is not None,
            "created_at": self.at,
            "timeout_seconds": timeout,
            "timeout_at": deadline_after(self.at, timeout),
            "waiting_timeout_seconds": self.policy.default_waiting_timeout,
        }
        run = fresh(Run, given)
        if isinstance(event, RunStarted):
            run = _fill_in(run, event, self.policy, named)
        self.run = run
        self._record(ObjectKind.RUN, run.id, None, RunStatus.RUNNING, self.at, self.incoming.origin)

    def _transition_run(self, event: Event, origin: Origin, at: int | None = None) -> Outcome:
        run = self._the_run()
        event_type = event.event_type
        if run.status in RUN.terminal or TARGET[event_type] == run.status:
            return Outcome.STALE
        assert event_type.trigger is not None
        target = legal_target(ObjectKind.RUN, event_type.trigger, run.status)
        if target is None:
            self.rejection = IllegalTransition(run.id, run.id, run.status, event_type)
            return Outcome.REJECTED
        self._move_run(RunStatus(target), event, origin, self.at if at is None else at)
        return Outcome.APPLIED

    def _move_run(self, target: RunStatus, event: Event | None, origin: Origin, at: int) -> None:
        run = self._the_run()
        stamp = max(at, run.created_at)
        update: dict[str, Any] = {"status": target}
        if target is RunStatus.WAITING:
            seconds = run.waiting_timeout_seconds
            if isinstance(event, RunWaiting) and "waiting_timeout_seconds" in event.data.model_fields_set:
                seconds = event.data.waiting_timeout_seconds
            update["waiting_until"] = deadline_after(stamp, seconds)
        elif target is RunStatus.RUNNING:
            update["waiting_until"] = None
        if target in RUN.terminal:
            update["completed_at"] = stamp
        if target is RunStatus.FAILED:
            update["failed_at"] = stamp
            update["error"] = event.data.error if isinstance(event, RunFailed) else None
        if target is RunStatus.CANCELLED:
            update["cancelled_at"] = stamp
        if target is RunStatus.TIMEOUT:
            update["error"] = ErrorInfo(code="TIMEOUT", message=_timeout_message(run, origin))
        if isinstance(event, RunCompleted):
            update["outputs"] = event.data.outputs
        self.run = evolve(run, update)
        event_id, event_type = _cause(event, EventType.RUN_TIMED_OUT)
        self._record(ObjectKind.RUN, run.id, run.status, target, stamp, origin, event_id, event_type)
        if target in RUN.terminal:
            self._close_open_steps(target, stamp, event_id, event_type)

    def _close_open_steps(self, run_status: RunStatus, stamp: int, event_id: str | None, event_type: str) -> None:
        """A run that ends closes its steps in progress: expired on timeout, else cancelled."""
        closed = StepStatus.EXPIRED if run_status is RunStatus.TIMEOUT else StepStatus.CANCELLED
        for step in list(self.steps.values()):
            if step.status is StepStatus.IN_PROGRESS:
                self._move_step(step, closed, stamp, Origin.CASCADE, event_id, event_type, event=None)

    def _fire_run_deadline_before(self, at: int) -> None:
        """A deadline that passed before the event happened is applied first, stamped with itself."""
        run = self._the_run()
        due = run.deadline()
        if run.status not in RUN.terminal and due is not None and due < at:
            self._move_run(RunStatus.TIMEOUT, None, Origin.DEADLINE, due)

    # --- steps -------------------------------------------------------------------------

    def step_event(self) -> Outcome:
        event = self.event
        assert isinstance(event, StepPlain | StepCompleted | StepFailed)
        if self.run is None:
            self._create_run()
        else:
            self._fire_run_deadline_before(self.at)
        step = self.steps.get(event.step_id)
        if self._the_run().status in RUN.terminal:
            return self._late_usage(step, event)
        if step is None:
            step = self._create_step(event)
            if isinstance(event, StepPlain) and event.event_type is EventType.STEP_CREATED:
                return Outcome.APPLIED
        elif step.status is StepStatus.IN_PROGRESS and step.expires_at is not None and step.expires_at < self.at:
            step = self._move_step(step, StepStatus.EXPIRED, step.expires_at, Origin.DEADLINE, None, "step.expired")
        if step.status in STEP.terminal or TARGET[event.event_type] == step.status:
            return self._late_usage(step, event)
        assert event.event_type.trigger is not None
        target = legal_target(ObjectKind.STEP, event.event_type.trigger, step.status)
        if target is None:  # unreachable with today's table; kept so a new edge cannot slip through
            self.rejection = IllegalTransition(event.run_id, step.id, step.status, event.event_type)
            return Outcome.REJECTED
        self._move_step(step, StepStatus(target), self.at, self.incoming.origin, event.id, event.type, event)
        return Outcome.APPLIED

    def _create_step(self, event: StepPlain | StepCompleted | StepFailed) -> Step:
        data = event.data
        given = _step_fields(event)
        expires_at = data.expires_at
        if expires_at is None:
            expires_at = deadline_after(self.at, self.policy.default_step_timeout)
        given.update(id=event.step_id, run_id=event.run_id, created_at=self.at, expires_at=expires_at)
        step = fresh(Step, given)
        self.steps[step.id] = step
        self._record(ObjectKind.STEP, step.id, None, StepStatus.IN_PROGRESS, self.at, self.incoming.origin)
        return step

    def _move_step(
        self,
        step: Step,
        target: StepStatus,
        at: int,
        origin: Origin,
        event_id: str | None,
        event_type: str,
        event: StepPlain | StepCompleted | StepFailed | None = None,
    ) -> Step:
        stamp = max(at, step.created_at)
        update: dict[str, Any] = {"status": target, f"{target.value}_at": stamp}
        if event is not None:
            update.update(_step_fields(event))
            if isinstance(event, StepCompleted | StepFailed):
                update.update(usage=event.data.usage, cost_usd=event.data.cost_usd)
                update["stop_reason"] = event.data.stop_reason or step.stop_reason
            if isinstance(event, StepFailed):
                update["error"] = event.data.error
        moved = evolve(step, update)
        self.steps[step.id] = moved
        self._record(ObjectKind.STEP, step.id, step.status, target, stamp, origin, event_id, event_type)
        return moved

    def _late_usage(self, step: Step | None, event: StepPlain | StepCompleted | StepFailed) -> Outcome:
        """Stale for status; but usage a finished step never recorded is still billed."""
        if not isinstance(event, StepCompleted | StepFailed):
            return Outcome.STALE
        usage, cost = event.data.usage, event.data.cost_usd
        if step is None:
            if usage is None and cost is None:
                return Outcome.STALE
            step = self._closed_late_step(event)
        update: dict[str, Any] = {}
        if usage is not None and step.usage is None:
            update["usage"] = usage
        if cost is not None and step.cost_usd is None:
            update["cost_usd"] = cost
        if update:
            self.steps[step.id] = evolve(step, update)
            self.late_usage = True
            self._record(
                ObjectKind.STEP,
                step.id,
                step.status,
                step.status,
                self.at,
                self.incoming.origin,
                note=LATE_USAGE,
            )
        return Outcome.STALE

    def _closed_late_step(self, event: StepCompleted | StepFailed) -> Step:
        """A step first heard of after its run ended: recorded as the run's end would have closed it."""
        run = self._the_run()
        closed = StepStatus.EXPIRED if run.status is RunStatus.TIMEOUT else StepStatus.CANCELLED
        ended = run.completed_at if run.completed_at is not None else self.at
        created = min(self.at, ended)
        update = _step_fields(event) | {"status": closed, f"{closed.value}_at": ended}
        step = evolve(Step(id=event.step_id, run_id=event.run_id, created_at=created), update)
        self.steps[step.id] = step
        self._record(ObjectKind.STEP, step.id, None, closed, ended, Origin.CASCADE, event.id, event.type)
        return step

    # --- records -----------------------------------------------------------------------

    def _record(
        self,
        kind: ObjectKind,
        object_id: str,
        before: str | None,
        after: str,
        at: int,
        origin: Origin,
        event_id: str | None = None,
        event_type: str | None = None,
        note: str | None = None,
    ) -> None:
        if event_type is None:
            event_id, event_type = self.event.id, self.event.type
        base = self.current.history_len if self.current is not None else 0
        record = new_transition(  # every part is ours or already valid
            n=base + len(self.history) + 1,
            object=kind,
            id=object_id,
            run_id=self.event.run_id,
            from_=None if before is None else str(before),
            to=str(after),
            event_id=event_id,
            event_type=event_type,
            origin=origin,
            at=at,
            applied_at=self.now,
            note=note,
        )
        self.history.append(record)

    def result(self, outcome: Outcome) -> Result:
        if self.run is None:
            return Result(self.current, outcome, rejection=self.rejection)
        previous = self.current
        parts = {
            "run": self.run,
            "steps": self.steps,
            "version": previous.version if previous else 0,  # the store counts versions, on commit
            "history_len": (previous.history_len if previous else 0) + len(self.history),
            "last_sequence": max(previous.last_sequence if previous else 0, self.event.sequence or 0),
        }
        state = trusted(RunState, parts)
        return Result(state, outcome, tuple(self.history), self.rejection, self.late_usage)


def _cause(event: Event | None, fallback: EventType) -> tuple[str | None, str]:
    return (event.id, event.type) if event is not None else (None, fallback.value)


def _timeout_message(run: Run, origin: Origin) -> str:
    if origin is Origin.DEADLINE and run.status is RunStatus.WAITING and run.waiting_until == run.deadline():
        return "run waited for input longer than its waiting timeout"
    if origin is Origin.DEADLINE and run.timeout_seconds is not None:
        return f"run exceeded its timeout of {run.timeout_seconds:g} s"
    return "run timed out"


def _fill_in(run: Run, event: RunStarted, policy: Policy, account: str | None) -> Run:
    """The data a run.started carries, onto a run it creates or that an earlier event created.

    `account` is the one the event names (its data, else its API token's); `_account_mismatch`
    has already refused it unless the run has no named account yet or it is the run's own.
    """
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
    if account is not None:
        update.update(account_id=account, account_named=True)
    if "timeout_seconds" in given:
        update["timeout_seconds"] = data.timeout_seconds
        update["timeout_at"] = deadline_after(run.created_at, data.timeout_seconds)
    if "waiting_timeout_seconds" in given:
        update["waiting_timeout_seconds"] = data.waiting_timeout_seconds
    return evolve(run, update)


_STEP_FIELDS = (
    "type",
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
)


def _step_fields(event: StepPlain | StepCompleted | StepFailed) -> dict[str, Any]:
    """The descriptive fields a step event names; absent ones leave the step as it was."""
    data = event.data
    named = data.model_fields_set  # fields the producer sent: usually a few of the twelve
    update = {name: getattr(data, name) for name in _STEP_FIELDS if name in named and getattr(data, name) is not None}
    if data.step_details is not None:
        update["step_details"] = data.step_details.model_dump()
    return update
