"""The one door for every status change: `apply_event`.

It takes a run's current state (or None, or a Tombstone), one event and the time, and
returns the new state, the outcome and the history records it adds. docs/design.md's outcome
tables are decided by `lifecycle.legal_target`; this module adds what the tables do
not show: implicit creation, the run.started fill-in, deadlines that passed before the
event, cascades, late usage and clamping.
"""

from collections.abc import Set

from statemachine.errors import AccountMismatch
from statemachine.events import EventType, RunStarted
from statemachine.incoming import DEFAULT_POLICY, LATE_USAGE, TARGET, Incoming, Result
from statemachine.models import RunState, Tombstone
from statemachine.policy import Policy
from statemachine.status import ObjectKind, Outcome
from statemachine.work import Work

__all__ = ["DEFAULT_POLICY", "LATE_USAGE", "TARGET", "Incoming", "Result", "apply_event"]


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
    work = Work(current, incoming, now, policy)
    event_type = event.event_type
    if event_type is EventType.RUN_HEARTBEAT:
        # its id is not kept: a run may send thousands, and a repeated one changes nothing more
        return work.result(work.heartbeat())._replace(remember_id=False)
    outcome = work.run_event() if event_type.kind is ObjectKind.RUN else work.step_event()
    return work.result(outcome)


def _sign_of_life_only(current: RunState, incoming: Incoming, now: int, policy: Policy, outcome: Outcome) -> Result:
    """A duplicate or an event stale by sequence changes nothing, but still shows its run alive
    (a retrying producer is): it moves the run's inactivity clock, once a silence already past
    has fired."""
    remember = outcome is not Outcome.DUPLICATE
    if current.run.inactivity_timeout_seconds is None:
        return Result(current, outcome, remember_id=remember)
    work = Work(current, incoming, now, policy)
    work.fire_silence_before()
    return work.result(outcome)._replace(remember_id=remember)


def _account_mismatch(current: RunState | None, incoming: Incoming) -> AccountMismatch | None:
    """An event may name no account, or only the run's: a run's account is fixed when it is created.
    (The worker applies each event to the run of the account decided at publish, so only a forged
    inbox entry meets this rule there.)"""
    event = incoming.event
    in_data = event.data.account_id if isinstance(event, RunStarted) else None
    if in_data is None:
        named = incoming.account
    elif incoming.account is not None and in_data != incoming.account:
        return AccountMismatch(event.run_id, in_data)
    else:
        named = in_data  # what `filling.named_account` says, read here without a second look
    if current is None or named is None or named == current.run.account_id:
        return None
    return AccountMismatch(event.run_id, named)
