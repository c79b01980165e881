"""The one door for every status change: `apply_event`.

It takes a run's current state (or None, or a Tombstone), one event and the time, and
returns the new state, the outcome and the history records it adds. DESIGN.md's outcome
tables are decided by `lifecycle.legal_target`; this module adds what the tables do
not show: implicit creation, the run.started fill-in, deadlines that passed before the
event, cascades, late usage and clamping.
"""

from collections.abc import Set
from decimal import Decimal
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
from statemachine.inactivity import INACTIVITY, sign_of_life, silence, touched
from statemachine.lifecycle import RUN, STEP, TARGETS, legal_target
from statemachine.models import Run, RunState, Step, Tombstone, Transition, evolve, fresh, new_transition, trusted
from statemachine.policy import Policy, deadline_after, effective_seconds
from statemachine.pricing import REPORTED
from statemachine.status import ObjectKind, Origin, Outcome, RunStatus, StepStatus

# The status each event aims at, from the lifecycle tables: an event aimed at the current status is stale.
TARGET: dict[EventType, str] = {t: TARGETS[t.value] for t in EventType if t.value in TARGETS}  # not the signals

LATE_USAGE = "late_usage"
DEFAULT_POLICY = Policy()


# Value objects made once or more per event are NamedTuples: immutable like a frozen
# dataclass, at a fraction of its construction cost.


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
            return _sign_of_life_only(current, incoming, now, policy, Outcome.DUPLICATE)
        if event.sequence is not None and event.sequence <= current.last_sequence:
            return _sign_of_life_only(current, incoming, now, policy, Outcome.STALE)
    work = _Work(current, incoming, now, policy)
    if event.event_type is EventType.RUN_HEARTBEAT:
        # its id is not kept: a run may send thousands, and a repeated one changes nothing more
        return work.result(work.heartbeat())._replace(remember_id=False)
    outcome = work.run_event() if event.event_type.kind is ObjectKind.RUN else work.step_event()
    return work.result(outcome)


def _sign_of_life_only(current: RunState, incoming: Incoming, now: int, policy: Policy, outcome: Outcome) -> Result:
    """A duplicate or an event stale by sequence changes nothing, but still shows its run alive
    (a retrying producer is): it moves the run's inactivity clock, once a silence already past
    has fired."""
    remember = outcome is not Outcome.DUPLICATE
    if current.run.inactivity_timeout_seconds is None:
        return Result(current, outcome, remember_id=remember)
    work = _Work(current, incoming, now, policy)
    work.fire_silence_before()
    return work.result(outcome)._replace(remember_id=remember)


def _account_mismatch(current: RunState | None, incoming: Incoming) -> AccountMismatch | None:
    """An event may name no account, or only the run's: a run's account is fixed when it is created.
    (The worker applies each event to the run of the account decided at publish, so only a forged
    inbox entry meets this rule there.)"""
    event = incoming.event
    in_data = event.data.account_id if isinstance(event, RunStarted) else None
    if incoming.account is not None and in_data not in (None, incoming.account):
        return AccountMismatch(event.run_id, in_data)
    named = _named_account(incoming)
    if current is None or named is None or named == current.run.account_id:
        return None
    return AccountMismatch(event.run_id, named)


def _named_account(incoming: Incoming) -> str | None:
    event = incoming.event
    in_data = event.data.account_id if isinstance(event, RunStarted) else None
    return in_data if in_data is not None else incoming.account


class _Work:
    """The changes one event makes, collected before they become the new RunState.

    A plain class with slots: one is made per event, so its construction is kept cheap."""

    __slots__ = (
        "alive",
        "at",
        "clock_skewed",
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
        # the event's time: when it occurred, else when it is applied; a producer's clock ahead of
        # Redis's by more than the policy allows is not believed (it could fire deadlines early)
        occurred = self.event.occurred_at
        self.clock_skewed = occurred is not None and occurred > now + policy.clock_skew_ms
        self.at: int = now if occurred is None or self.clock_skewed else occurred
        # when it shows the run alive; a deadline firing is no sign of life
        self.alive: int | None = None
        if incoming.origin is not Origin.DEADLINE:
            self.alive = sign_of_life(occurred, incoming.arrived_at, now)
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
            self.fire_deadlines_before(self.at)
        run = self._the_run()
        if isinstance(event, RunStarted):
            if not run.started:
                self.run = _fill_in(_created_earlier(run, self.at), event)
            return Outcome.STALE
        return self._transition_run(event, origin=self.incoming.origin)

    def heartbeat(self) -> Outcome:
        """A sign of life and nothing else: it creates no run and adds no history."""
        if self.run is None:
            return Outcome.STALE
        self.fire_deadlines_before(self.at)
        return Outcome.APPLIED if self._the_run().status is RunStatus.RUNNING else Outcome.STALE

    def _the_run(self) -> Run:
        assert self.run is not None
        return self.run

    def _create_run(self) -> None:
        event = self.event
        timeout = self.policy.default_run_timeout
        given = {
            "id": event.run_id,
            "account_id": _named_account(self.incoming) or self.policy.default_account,
            "created_at": self.at,
            "timeout_seconds": timeout,
            "timeout_at": deadline_after(self.at, timeout),
            "waiting_timeout_seconds": self.policy.default_waiting_timeout,
            "inactivity_timeout_seconds": effective_seconds(self.policy.default_inactivity_timeout),
        }
        run = fresh(Run, given)
        if isinstance(event, RunStarted):
            run = _fill_in(run, event)
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

    def _move_run(
        self, target: RunStatus, event: Event | None, origin: Origin, at: int, note: str | None = None
    ) -> None:
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
            message = silence(run) if note == INACTIVITY else _timeout_message(run, origin)
            update["error"] = ErrorInfo(code="TIMEOUT", message=message)
        if isinstance(event, RunCompleted):
            update["outputs"] = event.data.outputs
        self.run = evolve(run, update)
        event_id, event_type = _cause(event, EventType.RUN_TIMED_OUT)
        self._record(ObjectKind.RUN, run.id, run.status, target, stamp, origin, event_id, event_type, note)
        if target in RUN.terminal:
            self._close_open_steps(target, stamp, event_id, event_type)

    def _close_open_steps(self, run_status: RunStatus, stamp: int, event_id: str | None, event_type: str) -> None:
        """A run that ends closes its steps in progress: expired on timeout, else cancelled."""
        closed = StepStatus.EXPIRED if run_status is RunStatus.TIMEOUT else StepStatus.CANCELLED
        for step in list(self.steps.values()):
            if step.status is StepStatus.IN_PROGRESS:
                self._move_step(step, closed, stamp, Origin.CASCADE, event_id, event_type, event=None)

    def fire_deadlines_before(self, at: int, alive: int | None = None) -> None:
        """Deadlines that passed before `at` fire first, in the order of their instants, each
        stamped with its own: a step that expired before its run ended is expired, and the run's
        end — its timeout, or a silence that reached its limit before the event showed the run
        alive (`alive`) — cascades only to the steps still open then. Never one Redis's clock has
        not reached (`now`), whatever the event's time says. The same whenever it runs: a sweep
        at each instant, a late sweep, or an event after them all."""
        run = self._the_run()
        if run.status in RUN.terminal:
            return
        before = min(at, self.now + 1)
        end = self._run_end(before, self.alive if alive is None else alive)
        expiring = sorted(
            (step.expires_at, step.id)
            for step in self.steps.values()
            if step.status is StepStatus.IN_PROGRESS and step.expires_at is not None and step.expires_at < before
        )
        for expires_at, step_id in expiring:
            if end is not None and end[0] <= expires_at:
                break  # the run ended first: its end closes the rest
            self._move_step(self.steps[step_id], StepStatus.EXPIRED, expires_at, Origin.DEADLINE, None, "step.expired")
        if end is not None:
            self._move_run(RunStatus.TIMEOUT, None, Origin.DEADLINE, end[0], note=end[1])

    def _run_end(self, before: int, alive: int | None) -> tuple[int, str | None] | None:
        """When the run's own deadline ended it before `before`, and the note that says which:
        the earlier of its timeout (or waiting timeout) and its silence limit, the silence on a tie."""
        run = self._the_run()
        ends: list[tuple[int, int, str | None]] = []
        quiet = run.inactive_at()
        if quiet is not None and alive is not None and quiet < alive:
            ends.append((quiet, 0, INACTIVITY))
        due = run.deadline()
        if due is not None and due < before:
            ends.append((due, 1, None))
        if not ends:
            return None
        instant, _, note = min(ends)
        return instant, note

    def fire_silence_before(self) -> None:
        """Only the inactivity deadline, for an event that changes nothing else."""
        self.fire_deadlines_before(-1)

    # --- steps -------------------------------------------------------------------------

    def step_event(self) -> Outcome:
        event = self.event
        assert isinstance(event, StepPlain | StepCompleted | StepFailed)
        if self.run is None:
            self._create_run()
        else:
            self.fire_deadlines_before(self.at)
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
                cost, source = self._cost(step, event)
                update.update(usage=event.data.usage, cost_usd=cost, cost_source=source)
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
        usage = event.data.usage
        if step is None:
            if usage is None and event.data.cost_usd is None:
                return Outcome.STALE
            step = self._closed_late_step(event)
        update: dict[str, Any] = {}
        if usage is not None and step.usage is None:
            update["usage"] = usage
        cost, source = self._cost(step, event)
        if cost is not None and step.cost_usd is None:
            update.update(cost_usd=cost, cost_source=source)
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

    def _cost(self, step: Step, event: StepCompleted | StepFailed) -> tuple[Decimal | None, str | None]:
        """The reported cost, else the pricer's for the usage and model (the event's, else the step's)."""
        data = event.data
        if data.cost_usd is not None:
            return data.cost_usd, REPORTED
        model = data.model or step.model
        pricer = self.policy.pricer
        if pricer is None or data.usage is None or model is None:
            return None, None
        priced = pricer.price(model, data.provider_name or step.provider_name, data.usage, self.at)
        return (None, None) if priced is None else priced

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
        parent = self.steps[object_id].parent_step_id if kind is ObjectKind.STEP else None
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
            parent_step_id=parent,
        )
        self.history.append(record)

    def result(self, outcome: Outcome) -> Result:
        if self.run is None:
            return Result(self.current, outcome, rejection=self.rejection)
        previous = self.current
        parts = {
            "run": self.run if self.alive is None else touched(self.run, self.alive),
            "steps": self.steps,
            "version": previous.version if previous else 0,  # the store counts versions, on commit
            "history_len": (previous.history_len if previous else 0) + len(self.history),
            "last_sequence": max(previous.last_sequence if previous else 0, self.event.sequence or 0),
        }
        state = trusted(RunState, parts)
        return Result(
            state, outcome, tuple(self.history), self.rejection, self.late_usage, clock_skewed=self.clock_skewed
        )


def _cause(event: Event | None, fallback: EventType) -> tuple[str | None, str]:
    return (event.id, event.type) if event is not None else (None, fallback.value)


def _timeout_message(run: Run, origin: Origin) -> str:
    if origin is Origin.DEADLINE and run.status is RunStatus.WAITING and run.waiting_until == run.deadline():
        return "run waited for input longer than its waiting timeout"
    if origin is Origin.DEADLINE and run.timeout_seconds is not None:
        return f"run exceeded its timeout of {run.timeout_seconds:g} s"
    return "run timed out"


def _created_earlier(run: Run, at: int) -> Run:
    """A run created implicitly by a later-stamped event starts when its run.started says, if that
    is earlier (an OTLP root span, sent last, starts before its children); never later. Its
    timeout counts from the new start; the history keeps the creation record as it was written."""
    if at >= run.created_at:
        return run
    return evolve(run, {"created_at": at, "timeout_at": deadline_after(at, run.timeout_seconds)})


def _fill_in(run: Run, event: RunStarted) -> Run:
    """The data a run.started carries, onto a run it creates or that an earlier event created
    (not its account: that was fixed when the run was created, and `_account_mismatch` has
    refused an event naming another)."""
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


_STEP_FIELDS = (
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
)


def _step_fields(event: StepPlain | StepCompleted | StepFailed) -> dict[str, Any]:
    """The descriptive fields a step event names; absent ones leave the step as it was."""
    data = event.data
    named = data.model_fields_set  # fields the producer sent: usually a few of the fourteen
    update = {name: getattr(data, name) for name in _STEP_FIELDS if name in named and getattr(data, name) is not None}
    if data.step_details is not None:
        update["step_details"] = data.step_details.model_dump()
    return update
