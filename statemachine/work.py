"""The changes one event makes to a run and its steps, collected by `Work` before they become
the new RunState: run and step transitions, cascades, deadlines that passed before the event
(in the order of their instants), the inactivity clock, late usage and prices. `apply_event`
(statemachine.apply) and `fire_deadlines` (statemachine.deadlines) drive it.
"""

from decimal import Decimal
from typing import Any

from statemachine.errors import IllegalTransition, RunstateError
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
from statemachine.filling import cause, created_earlier, fill_in, named_account, step_fields, timeout_message
from statemachine.inactivity import INACTIVITY, sign_of_life, silence, touched
from statemachine.incoming import LATE_USAGE, TARGET, Incoming, Result
from statemachine.lifecycle import RUN, STEP, legal_target
from statemachine.models import Run, RunState, Step, Transition, evolve, fresh, new_transition, trusted
from statemachine.policy import Policy, deadline_after, effective_seconds
from statemachine.pricing import REPORTED
from statemachine.status import ObjectKind, Origin, Outcome, RunStatus, StepStatus


class Work:
    """The changes one event makes, collected before they become the new RunState.

    A plain class with slots: one is made per event, so its construction is kept cheap."""

    __slots__ = (
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
        # the event's time: when it occurred, else when it was published (so an event applied
        # again after a failover gets the same stamps), else when it is applied; a producer's
        # clock ahead of Redis's by more than the policy allows is not believed (it could fire
        # deadlines early)
        occurred, arrived = self.event.occurred_at, incoming.arrived_at
        self.clock_skewed = occurred is not None and occurred > now + policy.clock_skew_ms
        known = now if arrived is None else min(arrived, now)
        self.at: int = known if occurred is None or self.clock_skewed else occurred
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
                self.run = fill_in(created_earlier(run, self.at), event)
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
            "account_id": named_account(self.incoming) or self.policy.default_account,
            "created_at": self.at,
            "timeout_seconds": timeout,
            "timeout_at": deadline_after(self.at, timeout),
            "waiting_timeout_seconds": self.policy.default_waiting_timeout,
            "inactivity_timeout_seconds": effective_seconds(self.policy.default_inactivity_timeout),
        }
        run = fresh(Run, given)
        if isinstance(event, RunStarted):
            run = fill_in(run, event)
        self.run = run
        self._record(run, None, RunStatus.RUNNING, self.at, self.incoming.origin)

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
            message = silence(run) if note == INACTIVITY else timeout_message(run, origin)
            update["error"] = ErrorInfo(code="TIMEOUT", message=message)
        if isinstance(event, RunCompleted):
            update["outputs"] = event.data.outputs
        self.run = evolve(run, update)
        event_id, event_type = cause(event, EventType.RUN_TIMED_OUT)
        self._record(self.run, run.status, target, stamp, origin, event_id, event_type, note)
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
        if alive is None and run.inactivity_timeout_seconds is not None:
            alive = self.shown_alive()
        end = _run_end(run, before, alive)
        # on every event: a list, sorted only when something expired (most steps have no expiry)
        expiring = [
            (step.expires_at, step.id)
            for step in self.steps.values()
            if step.expires_at is not None and step.expires_at < before and step.status is StepStatus.IN_PROGRESS
        ]
        if expiring:
            expiring.sort()
            for expires_at, step_id in expiring:
                if end is not None and end[0] <= expires_at:
                    break  # the run ended first: its end closes the rest
                step = self.steps[step_id]
                self._move_step(step, StepStatus.EXPIRED, expires_at, Origin.DEADLINE, None, "step.expired")
        if end is not None:
            self._move_run(RunStatus.TIMEOUT, None, Origin.DEADLINE, end[0], note=end[1])

    def shown_alive(self) -> int | None:
        """When this event shows the run alive; None for a deadline firing, which is no sign of
        life. Asked only about a run with an inactivity timeout: no other run keeps a clock."""
        if self.incoming.origin is Origin.DEADLINE:
            return None
        return sign_of_life(self.event.occurred_at, self.incoming.arrived_at, self.now)

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
        given = step_fields(event)
        expires_at = data.expires_at
        if expires_at is None:
            expires_at = deadline_after(self.at, self.policy.default_step_timeout)
        given.update(id=event.step_id, run_id=event.run_id, created_at=self.at, expires_at=expires_at)
        step = fresh(Step, given)
        self.steps[step.id] = step
        self._record(step, None, StepStatus.IN_PROGRESS, self.at, self.incoming.origin)
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
            update.update(step_fields(event))
            if isinstance(event, StepCompleted | StepFailed):
                cost, source = self._cost(step, event)
                update.update(usage=event.data.usage, cost_usd=cost, cost_source=source)
                update["stop_reason"] = event.data.stop_reason or step.stop_reason
            if isinstance(event, StepFailed):
                update["error"] = event.data.error
        moved = evolve(step, update)
        self.steps[step.id] = moved
        self._record(moved, step.status, target, stamp, origin, event_id, event_type)
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
            billed = self.steps[step.id] = evolve(step, update)
            self.late_usage = True
            self._record(billed, step.status, step.status, self.at, self.incoming.origin, note=LATE_USAGE)
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
        update = step_fields(event) | {"status": closed, f"{closed.value}_at": ended}
        step = evolve(Step(id=event.step_id, run_id=event.run_id, created_at=created), update)
        self.steps[step.id] = step
        self._record(step, None, closed, ended, Origin.CASCADE, event.id, event.type)
        return step

    # --- records -----------------------------------------------------------------------

    def _record(
        self,
        changed: Run | Step,
        before: str | None,
        after: str,
        at: int,
        origin: Origin,
        event_id: str | None = None,
        event_type: str | None = None,
        note: str | None = None,
    ) -> None:
        """One history record of `changed`: the run or a step as this change left it."""
        if event_type is None:
            event_id, event_type = self.event.id, self.event.type
        if isinstance(changed, Step):
            kind, parent = ObjectKind.STEP, changed.parent_step_id
        else:
            kind, parent = ObjectKind.RUN, None
        base = self.current.history_len if self.current is not None else 0
        record = new_transition(  # every part is ours or already valid
            n=base + len(self.history) + 1,
            object=kind,
            id=changed.id,
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
        previous, run = self.current, self.run
        if run.inactivity_timeout_seconds is not None:
            run = touched(run, self.shown_alive())
        parts = {
            "run": run,
            "steps": self.steps,
            "version": previous.version if previous else 0,  # the store counts versions, on commit
            "history_len": (previous.history_len if previous else 0) + len(self.history),
            "last_sequence": max(previous.last_sequence if previous else 0, self.event.sequence or 0),
        }
        state = trusted(RunState, parts)
        return Result(
            state, outcome, tuple(self.history), self.rejection, self.late_usage, clock_skewed=self.clock_skewed
        )


def _run_end(run: Run, before: int, alive: int | None) -> tuple[int, str | None] | None:
    """When the run's own deadline ended it before `before`, and the note that says which: the
    earlier of its timeout (or waiting timeout) and its silence limit, the silence on a tie.
    `alive`: when the run was last shown alive, None when unknown (no silence can then end it)."""
    due = run.deadline()
    passed = due if due is not None and due < before else None
    quiet = run.inactive_at() if alive is not None else None
    if quiet is not None and alive is not None and quiet < alive and (passed is None or quiet <= passed):
        return quiet, INACTIVITY
    return None if passed is None else (passed, None)
