"""Apply a batch of events: load every run it touches in one round trip, apply each run's
events in order through `apply_event`, commit each run with one compare-and-set, and
reapply the runs another worker changed in between.
"""

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import orjson
import structlog

from statemachine.apply import Incoming, Result, apply_event
from statemachine.errors import InvalidEvent, RunstateError
from statemachine.events import Event, parse_event
from statemachine.models import RunState
from statemachine.policy import Policy
from statemachine.status import RUN_TERMINAL
from statemachine.timefmt import rfc3339
from worker.envelope import Envelope
from worker.store import Commit, Loaded, Store

log = structlog.get_logger("runstate.processor")


@dataclass
class BatchReport:
    outcomes: Counter[str] = field(default_factory=Counter)
    conflicts: int = 0

    def as_dict(self) -> dict[str, Any]:
        return {"outcomes": dict(self.outcomes), "conflicts": self.conflicts}


def rejected_record(raw: str, error: RunstateError, at: int) -> bytes:
    """DESIGN.md's rejected record; the raw event is kept as JSON when it is JSON."""
    try:
        event: Any = orjson.loads(raw)
    except orjson.JSONDecodeError:
        event = raw
    return orjson.dumps({"event": event, "reason": error.code, "detail": error.detail, "at": rfc3339(at)})


class Processor:
    def __init__(self, store: Store, policy: Policy) -> None:
        self.store = store
        self.policy = policy

    def process(self, envelopes: list[Envelope]) -> BatchReport:
        report = BatchReport()
        by_run: dict[str, list[tuple[Envelope, Event]]] = {}
        orphans: list[tuple[Envelope, InvalidEvent]] = []
        for envelope in envelopes:
            try:
                event = parse_event(envelope.text)
            except InvalidEvent as invalid:
                orphans.append((envelope, invalid))
                continue
            by_run.setdefault(event.run_id, []).append((envelope, event))
        if orphans:
            self._reject_orphans(orphans, report)
        pending = by_run
        while pending:
            now, loaded = self.store.load({run: [e.id for _, e in items] for run, items in pending.items()})
            commits = [self._apply_run(run, items, loaded[run], now) for run, items in pending.items()]
            accepted = self.store.commit(commits)
            pending = {}
            for commit, ok in zip(commits, accepted, strict=True):
                if ok:
                    report.outcomes.update(commit.counters)
                else:  # another worker changed the run since we read it: read it again, apply again
                    pending[commit.run_id] = by_run[commit.run_id]
            if pending:
                report.conflicts += len(pending)
                log.debug("runs.conflict", runs=len(pending))
        return report

    def _apply_run(self, run_id: str, items: list[tuple[Envelope, Event]], loaded: Loaded, now: int) -> Commit:
        commit = Commit(run_id, loaded.version)
        state = loaded.state
        seen = set(loaded.seen)
        changed = False
        for envelope, event in items:
            result = apply_event(
                state, Incoming(event, envelope.origin, envelope.account), now=now, seen=seen, policy=self.policy
            )
            _count(result, event, commit)
            if result.rejection is not None:
                commit.rejected.append(rejected_record(envelope.text, result.rejection, now))
            if result.remember_id and isinstance(result.state, RunState):
                seen.add(event.id)
                commit.seen.append(event.id)
                changed = True
            commit.history.extend(result.history)
            state = result.state
        if changed and isinstance(state, RunState):
            commit.state = state
            commit.finished = state.run.status in RUN_TERMINAL
        return commit

    def _reject_orphans(self, orphans: list[tuple[Envelope, InvalidEvent]], report: BatchReport) -> None:
        now = self.store.now_ms()
        records = [rejected_record(envelope.text, invalid, now) for envelope, invalid in orphans]
        self.store.reject_orphans(records, {"event.rejected": len(records)})
        report.outcomes["event.rejected"] += len(records)
        log.warning("events.invalid", count=len(records), first=str(orphans[0][1])[:200])


def _count(result: Result, event: Event, commit: Commit) -> None:
    """Counters by object and outcome (`run.applied`, `step.stale`, ...) and late usage."""
    name = f"{event.event_type.kind}.{result.outcome}"
    commit.counters[name] = commit.counters.get(name, 0) + 1
    if result.late_usage:
        commit.counters["late_usage"] = commit.counters.get("late_usage", 0) + 1
