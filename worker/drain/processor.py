"""Drain runs' inboxes: load every run of a batch in one round trip, release its events in
`sequence` order, apply them through `apply_event`, and commit each run with one
compare-and-set that also removes what it applied from the inbox. A run another worker
changed in between is loaded and applied again, from the same inbox head.
"""

import os
from collections import Counter
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor, wait
from dataclasses import dataclass, field, replace
from typing import Any, NamedTuple

import orjson
import structlog

from statemachine.apply import Incoming, apply_event
from statemachine.deadlines import fire_deadlines, next_due
from statemachine.errors import InvalidEvent
from statemachine.events import Event, EventType, StepEvent, parse_event
from statemachine.inactivity import INACTIVITY, arm
from statemachine.models import RunState, Step, Tombstone, evolve
from statemachine.ordering import Arrival, Held, release
from statemachine.policy import Policy
from statemachine.status import RUN_TERMINAL, Origin, Outcome
from worker.drain.metrics import Recorder
from worker.store import keys
from worker.store.commit import Commit, Packed
from worker.store.envelope import Envelope, from_json
from worker.store.keys import RunRef
from worker.store.runs import Batch, Loaded, Store
from worker.store.subscriptions import Subscription, Subscriptions

log = structlog.get_logger("runstate.processor")

DRAIN_LIMIT = 1000  # inbox entries one pass takes from one run
PASS_BUDGET = 20_000  # inbox entries one pass takes from all its runs together


@dataclass
class BatchReport:
    outcomes: Counter[str] = field(default_factory=Counter)
    conflicts: int = 0
    failures: int = 0

    def add(self, other: "BatchReport") -> None:
        self.outcomes.update(other.outcomes)
        self.conflicts += other.conflicts
        self.failures += other.failures

    def as_dict(self) -> dict[str, Any]:
        return {"outcomes": dict(self.outcomes), "conflicts": self.conflicts, "failures": self.failures}


# "step.completed:applied": the outcome counters' names, made once, not per event
_COUNTER_NAMES = {(t.value, o): f"{t.value}:{o.value}" for t in EventType for o in Outcome}


class Queued(NamedTuple):
    """One inbox entry, decoded as far as it could be."""

    raw: str
    envelope: Envelope | None
    event: Event | None
    invalid: InvalidEvent | None


def decode(raw: bytes | str) -> Queued:
    """An inbox entry as far as it can be read; what cannot be read is rejected, not raised."""
    if isinstance(raw, bytes):
        data = raw
        try:
            raw = data.decode()
        except UnicodeDecodeError:
            return Queued(data.decode(errors="replace"), None, None, InvalidEvent(("queued entry: not valid UTF-8",)))
    try:
        envelope = from_json(orjson.loads(raw))
    except (orjson.JSONDecodeError, ValueError) as exc:
        return Queued(raw, None, None, InvalidEvent((f"queued entry: {exc}",)))
    try:
        return Queued(raw, envelope, parse_event(envelope.text), None)
    except InvalidEvent as invalid:
        return Queued(raw, envelope, None, invalid)


class Processor:
    def __init__(
        self,
        store: Store,
        policy: Policy,
        reorder_window_ms: int = 30_000,
        subscriptions: Subscriptions | None = None,
        recorder: Recorder | None = None,
    ) -> None:
        self.store = store
        self.policy = policy
        self.window_ms = reorder_window_ms
        self.subscriptions = subscriptions or Subscriptions(store.redis)
        self.recorder = recorder or Recorder()
        self._by_account: dict[str, list[Subscription]] = {}
        self._grouped_from: dict[str, Subscription] | None = None
        self._commit_thread: ThreadPoolExecutor | None = None
        self._commit_thread_pid = 0

    def drain(self, runs: list[RunRef]) -> BatchReport:
        """Apply everything queued for these runs, in order, until their inboxes are empty."""
        report = BatchReport()
        self.drive(iter([runs]), report)
        return report

    def drive(
        self, batches: Iterator[Sequence[RunRef]], report: BatchReport, holding: list[RunRef] | None = None
    ) -> None:
        """The one driver of drain passes: read and apply each batch of runs, commit it, and drain
        again the runs that need it (a conflict, a full inbox head), until nothing is left.

        Redis and the worker take turns as little as they can: the next batch is read first, then
        the previous one's commits are sent (a second thread waits for their answers, the GIL free
        meanwhile), and the next batch is applied while Redis runs those commits. A run in both
        (new events made it ready again) simply loses one compare-and-set and is drained again.
        `holding` is kept as the runs read and not yet committed: what a failure must give back."""
        again: list[RunRef] = []
        planned: Pass | None = None
        committer, in_flight = self._committer(), None
        try:
            while True:
                runs = list(dict.fromkeys([*again, *next(batches, ())]))
                if holding is not None:
                    holding[:] = [*(planned.prepared if planned is not None else ()), *runs]
                reading = self.read(runs) if runs else None
                in_flight = committer.submit(self.store.commit, planned.packed) if planned is not None else None
                previous, planned = planned, self.apply(reading, report) if reading is not None else None
                again = self.settle(previous, in_flight.result(), report) if previous is not None and in_flight else []
                if planned is None and not again:
                    return
        finally:
            if in_flight is not None:
                wait([in_flight])  # a drive that failed leaves no commit behind it still running

    def _committer(self) -> ThreadPoolExecutor:
        """The thread that waits for commits' answers, kept from one drive to the next (a new one
        costs ~65 µs of CPU a drive, a live worker's every turn); made anew in a forked child,
        where the parent's thread does not run."""
        if self._commit_thread is None or self._commit_thread_pid != os.getpid():
            self._commit_thread = ThreadPoolExecutor(max_workers=1, thread_name_prefix="runstate-commit")
            self._commit_thread_pid = os.getpid()
        return self._commit_thread

    def read(self, runs: list[RunRef]) -> "Reading":
        """Load these runs: one round trip."""
        limit = max(10, min(DRAIN_LIMIT, PASS_BUDGET // len(runs)))  # bounded memory per pass
        return Reading(self.store.load(runs, limit), limit)

    def apply(self, reading: "Reading", report: BatchReport) -> "Pass":
        """Apply what the loaded runs have queued: the commits to write, not yet written."""
        (now, loaded, subscriptions_version), limit = reading
        subscribers = self._subscribers(subscriptions_version)
        prepared: dict[RunRef, _Prepared] = {}
        for run, one in loaded.items():
            try:
                prepared[run] = _Prepared.of(one)
            except Exception:  # a run we cannot even read must not stall the others
                report.failures += 1
                log.exception("run.unreadable", run=run)
        # only a stored run has seen ids and closed steps: a batch of new runs skips the round trip
        known = self.store.known({run: p.named() for run, p in prepared.items() if p.stored})
        commits, packed = [], []
        for run, ready in prepared.items():
            try:
                holds = known.get(run)  # what the stored run holds of what its events name
                seen = frozenset() if holds is None else holds.seen
                if holds is not None and holds.closed:
                    ready = ready.with_closed(holds.closed)
                commit = self._drain_run(run, ready, seen, now, full=len(ready.queued) == limit)
                if commit.state is not None:
                    commit.subscribers = subscribers.get(commit.state.run.account_id, ())
                packed.append(self.store.pack(commit))  # here, where one run's failure stays that run's
                commits.append(commit)
            except Exception:  # a bug must not stall the other runs: this one waits for its timer
                report.failures += 1
                log.exception("run.drain_failed", run=run)
        return Pass(commits, packed, prepared, limit)

    def settle(self, planned: "Pass", accepted: list[bool], report: BatchReport) -> list[RunRef]:
        """Count what the commits wrote; the runs to drain again (a conflict, or a full inbox head)."""
        pending = []
        for commit, ok in zip(planned.commits, accepted, strict=True):
            if not ok:  # another worker committed this run since we read it: read it again
                report.conflicts += 1
                pending.append(commit.run)
                continue
            report.outcomes.update(commit.counters)
            self.recorder.observe_latency(planned.prepared[commit.run].published(commit.consumed))
            if commit.consumed == planned.limit:
                pending.append(commit.run)
        return pending

    def _subscribers(self, version: bytes) -> dict[str, list[Subscription]]:
        """Enabled subscriptions by account, as of this pass: read again only when they changed."""
        by_id = self.subscriptions.as_of(version)
        if by_id is not self._grouped_from:
            by_account: dict[str, list[Subscription]] = {}
            for subscription in by_id.values():
                if subscription.enabled:
                    by_account.setdefault(subscription.account, []).append(subscription)
            self._by_account, self._grouped_from = by_account, by_id
        return self._by_account

    def _drain_run(self, run: RunRef, ready: "_Prepared", seen: frozenset[str], now: int, *, full: bool) -> Commit:
        loaded = ready.loaded
        commit = Commit(
            run,
            loaded.version,
            consumed=len(ready.queued),
            now=now,
            had_document=loaded.document is not None,
            had_held=loaded.held_json is not None,
        )
        state = ready.state
        applied = state.last_sequence if isinstance(state, RunState) else 0
        arrivals = [Arrival(q.event.sequence if q.event else None, q.raw) for q in ready.queued]
        released = release(applied, ready.held, arrivals, now=now, window_ms=self.window_ms)
        for first, last in released.gaps:
            log.warning("sequence.gap", run=run, missing_from=first, missing_to=last)
            _bump(commit.counters, "gaps")
        remembered = set(seen)
        changed = False
        owner = keys.parts(run)  # (account, run id): what every event in this run's inbox names
        for raw in released.ready:
            state, applied_one = self._apply_one(commit, owner, ready.by_raw[raw], state, remembered, now)
            changed = changed or applied_one
        if isinstance(state, RunState) and state.last_sequence < released.released_through:
            # what was released in order stays released, whatever became of it (a rejection too)
            state = evolve(state, {"last_sequence": released.released_through})
            changed = True
        # A deadline joins the run's stream behind what was queued before it: not while events
        # wait for a sequence gap, nor while this pass left queued events unread.
        due = next_due(state) if isinstance(state, RunState) else None
        if isinstance(state, RunState) and due is not None and due <= now and not released.held and not full:
            fired = fire_deadlines(state, now=now, policy=self.policy)
            if fired.history:
                commit.history.extend(fired.history)
                state = fired.state
                changed = True
                due = next_due(state) if isinstance(state, RunState) else None
        if isinstance(state, RunState):
            armed = arm(state.run, now)  # where the timer looks at the silence next: rarely moved
            if armed is not state.run:
                state, changed = evolve(state, {"run": armed}), True
                due = next_due(state)
        if released.held and due is not None and due <= now:
            due = None  # it waits behind the held events: their window's end brings a worker back
        _count_deadlines(commit)
        commit.held = released.held
        dues = [released.due(self.window_ms), due]  # a full inbox head is drained again at once
        commit.next_due = min((d for d in dues if d is not None), default=None)
        if changed and isinstance(state, RunState):
            commit.state = state
            commit.finished = state.run.status in RUN_TERMINAL
        return commit

    def _apply_one(
        self,
        commit: Commit,
        owner: tuple[str, str],
        item: Queued,
        state: RunState | Tombstone | None,
        remembered: set[str],
        now: int,
    ) -> tuple[RunState | Tombstone | None, bool]:
        """One released event through the one door; returns the new state and whether the run changed."""
        if item.event is None or item.envelope is None:
            assert item.invalid is not None
            _reject_invalid(commit, _event_text(item), item.invalid, now)
            return state, False
        event, envelope = item.event, item.envelope
        account, run_id = owner
        if event.run_id != run_id or envelope.account != account:  # only a forged inbox entry can do this
            misplaced = InvalidEvent((f"queued for run {run_id!r} of account {account!r} but names another",))
            _reject_invalid(commit, envelope.text, misplaced, now)
            return state, False
        # the publisher's clock says when it arrived (0: unknown); the domain clamps it to `now`
        incoming = Incoming(event, envelope.origin, account, envelope.published_at or None)
        result = apply_event(state, incoming, now=now, seen=remembered, policy=self.policy)
        _bump(commit.counters, _COUNTER_NAMES[event.type, result.outcome])
        if result.late_usage:
            _bump(commit.counters, "late_usage")
        if result.clock_skewed:
            _bump(commit.counters, "clock_skew")
        if result.rejection is not None:
            commit.rejected.append((envelope.text, result.rejection))
        commit.history.extend(result.history)
        if result.remember_id and isinstance(result.state, RunState):
            remembered.add(event.id)
            commit.seen.append(event.id)
            return result.state, True
        return result.state, result.state is not state  # a duplicate or a heartbeat moves the clock


class Reading(NamedTuple):
    """Runs as loaded, not yet applied."""

    batch: Batch
    limit: int  # inbox entries read per run


class Pass(NamedTuple):
    """One pass over some runs, applied and not yet committed."""

    commits: list[Commit]
    packed: list[Packed]  # the commits as the script takes them, in the same order
    prepared: dict[RunRef, "_Prepared"]
    limit: int  # inbox entries read per run: a run that used them all has more waiting


@dataclass(frozen=True, slots=True)
class _Prepared:
    """A loaded run, parsed: its state, its held events and its decoded inbox head."""

    loaded: Loaded
    state: RunState | Tombstone | None
    held: list[Held]
    queued: list[Queued]
    by_raw: dict[str, Queued]

    @classmethod
    def of(cls, loaded: Loaded) -> "_Prepared":
        queued = [decode(raw) for raw in loaded.inbox]
        held = loaded.held()
        by_raw = {q.raw: q for q in queued} | {h.item: decode(h.item) for h in held}
        return cls(loaded, loaded.state(), held, queued, by_raw)

    @property
    def stored(self) -> bool:
        return self.loaded.document is not None

    def published(self, consumed: int) -> list[int]:
        """When the first `consumed` inbox entries were published (ms; 0 where unknown)."""
        return [q.envelope.published_at for q in self.queued[:consumed] if q.envelope is not None]

    def named(self) -> tuple[list[str], list[str]]:
        """What to look up in the stored run: the ids of the inbox head's and the held events (in
        its seen set), and the steps they name that its document does not hold open (among its
        closed steps; those not found there are new)."""
        events = [q.event for q in self.by_raw.values() if q.event is not None]
        state = self.state
        open_steps = state.steps if isinstance(state, RunState) else {}
        steps = {e.step_id for e in events if isinstance(e, StepEvent) and e.step_id not in open_steps}
        return list({e.id for e in events}), list(steps)

    def with_closed(self, closed: dict[str, bytes]) -> "_Prepared":
        """This run with the closed steps its events name added to its state."""
        state = self.state
        assert isinstance(state, RunState)
        steps = state.steps | {i: Step.model_validate_json(step) for i, step in closed.items()}
        return replace(self, state=evolve(state, {"steps": steps}))


def _count_deadlines(commit: Commit) -> None:
    """Deadlines fired, and among them timeouts for silence: each has its own counter."""
    fired = [t for t in commit.history if t.origin is Origin.DEADLINE]
    if fired:
        commit.counters["deadlines"] = len(fired)
        silent = sum(1 for t in fired if t.note == INACTIVITY)
        if silent:
            commit.counters["inactivity_timeouts"] = silent


def _event_text(item: Queued) -> str:
    return item.envelope.text if item.envelope is not None else item.raw


def _reject_invalid(commit: Commit, text: str, invalid: InvalidEvent, now: int) -> None:
    commit.rejected.append((text, invalid))
    _bump(commit.counters, "event.rejected")


def _bump(counters: dict[str, int], name: str) -> None:
    counters[name] = counters.get(name, 0) + 1
