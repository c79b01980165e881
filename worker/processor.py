"""Drain runs' inboxes: load every run of a batch in one round trip, release its events in
`sequence` order, apply them through `apply_event`, and commit each run with one
compare-and-set that also removes what it applied from the inbox. A run another worker
changed in between is loaded and applied again, from the same inbox head.
"""

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import orjson
import structlog

from statemachine.apply import Incoming, apply_event
from statemachine.deadlines import fire_deadlines, next_due
from statemachine.errors import InvalidEvent, RunstateError
from statemachine.events import Event, parse_event
from statemachine.models import RunState
from statemachine.ordering import Arrival, release
from statemachine.policy import Policy
from statemachine.status import RUN_TERMINAL
from statemachine.timefmt import rfc3339
from worker.envelope import Envelope, from_json
from worker.store import Commit, Loaded, Store

log = structlog.get_logger("runstate.processor")

DRAIN_LIMIT = 1000  # inbox entries one pass takes from one run


@dataclass
class BatchReport:
    outcomes: Counter[str] = field(default_factory=Counter)
    conflicts: int = 0
    failures: int = 0

    def as_dict(self) -> dict[str, Any]:
        return {"outcomes": dict(self.outcomes), "conflicts": self.conflicts, "failures": self.failures}


MAX_KEPT_BYTES = 262_144  # a rejected event is kept whole up to the size a valid one may have


def rejected_record(raw: str, error: RunstateError, at: int) -> bytes:
    """DESIGN.md's rejected record; the raw event is kept as JSON when it is JSON it can hold."""
    record = {"event": raw[:MAX_KEPT_BYTES], "reason": error.code, "detail": error.detail, "at": rfc3339(at)}
    if len(raw) <= MAX_KEPT_BYTES:
        try:
            return orjson.dumps({**record, "event": orjson.loads(raw)})
        except (orjson.JSONDecodeError, TypeError):  # not JSON, or nested beyond what JSON tools take
            pass
    return orjson.dumps(record)


@dataclass(frozen=True, slots=True)
class Queued:
    """One inbox entry, decoded as far as it could be."""

    raw: str
    envelope: Envelope | None
    event: Event | None
    invalid: InvalidEvent | None


def decode(raw: str) -> Queued:
    try:
        envelope = from_json(orjson.loads(raw))
    except (orjson.JSONDecodeError, ValueError) as exc:
        return Queued(raw, None, None, InvalidEvent((f"queued entry: {exc}",)))
    try:
        return Queued(raw, envelope, parse_event(envelope.text), None)
    except InvalidEvent as invalid:
        return Queued(raw, envelope, None, invalid)


class Processor:
    def __init__(self, store: Store, policy: Policy, reorder_window_ms: int = 30_000) -> None:
        self.store = store
        self.policy = policy
        self.window_ms = reorder_window_ms

    def drain(self, run_ids: list[str]) -> BatchReport:
        """Apply everything queued for these runs, in order, until their inboxes are empty."""
        report = BatchReport()
        pending = list(dict.fromkeys(run_ids))
        while pending:
            now, loaded = self.store.load(pending, DRAIN_LIMIT)
            queued = {run_id: [decode(raw.decode()) for raw in loaded[run_id].inbox] for run_id in pending}
            seen = self.store.seen({r: [q.event.id for q in items if q.event] for r, items in queued.items()})
            commits = []
            for run_id in pending:
                try:
                    commits.append(self._drain_run(run_id, loaded[run_id], queued[run_id], seen[run_id], now))
                except Exception:  # a bug must not stall the other runs: this one waits for its timer
                    report.failures += 1
                    log.exception("run.drain_failed", run_id=run_id)
            accepted = self.store.commit(commits)
            pending = []
            for commit, ok in zip(commits, accepted, strict=True):
                if not ok:  # another worker committed this run since we read it: read it again
                    report.conflicts += 1
                    pending.append(commit.run_id)
                    continue
                report.outcomes.update(commit.counters)
                if commit.consumed == DRAIN_LIMIT:
                    pending.append(commit.run_id)
        return report

    def _drain_run(self, run_id: str, loaded: Loaded, queued: list[Queued], seen: frozenset[str], now: int) -> Commit:
        commit = Commit(run_id, loaded.version, consumed=len(queued))
        state = loaded.state
        applied = state.last_sequence if isinstance(state, RunState) else 0
        by_raw = {q.raw: q for q in queued}
        arrivals = [Arrival(q.event.sequence if q.event else None, q.raw) for q in queued]
        released = release(applied, loaded.held, arrivals, now=now, window_ms=self.window_ms)
        for first, last in released.gaps:
            log.warning("sequence.gap", run_id=run_id, missing_from=first, missing_to=last)
            _bump(commit.counters, "gaps")
        remembered = set(seen)
        changed = False
        for raw in released.ready:
            item = by_raw.get(raw) or decode(raw)
            if item.event is None or item.envelope is None:
                assert item.invalid is not None
                commit.rejected.append(rejected_record(_event_text(item), item.invalid, now))
                _bump(commit.counters, "event.rejected")
                continue
            event, envelope = item.event, item.envelope
            if event.run_id != run_id:  # only a forged inbox entry can do this; it must not touch the run
                misplaced = InvalidEvent((f"run_id: queued for run {run_id!r} but names {event.run_id!r}",))
                commit.rejected.append(rejected_record(envelope.text, misplaced, now))
                _bump(commit.counters, "event.rejected")
                continue
            result = apply_event(
                state, Incoming(event, envelope.origin, envelope.account), now=now, seen=remembered, policy=self.policy
            )
            _bump(commit.counters, f"{event.event_type.kind}.{result.outcome}")
            if result.late_usage:
                _bump(commit.counters, "late_usage")
            if result.rejection is not None:
                commit.rejected.append(rejected_record(envelope.text, result.rejection, now))
            if result.remember_id and isinstance(result.state, RunState):
                remembered.add(event.id)
                commit.seen.append(event.id)
                changed = True
            commit.history.extend(result.history)
            state = result.state
        if isinstance(state, RunState):  # deadlines join the run's stream behind what was queued before them
            fired = fire_deadlines(state, now=now, policy=self.policy)
            if fired.history:
                _bump(commit.counters, "deadlines")
                commit.history.extend(fired.history)
                state = fired.state
                changed = True
        commit.held = released.held
        dues = [released.due(self.window_ms), next_due(state) if isinstance(state, RunState) else None]
        commit.next_due = min((due for due in dues if due is not None), default=None)
        if changed and isinstance(state, RunState):
            commit.state = state
            commit.finished = state.run.status in RUN_TERMINAL
        return commit


def _event_text(item: Queued) -> str:
    return item.envelope.text if item.envelope is not None else item.raw


def _bump(counters: dict[str, int], name: str) -> None:
    counters[name] = counters.get(name, 0) + 1
