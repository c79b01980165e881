"""Validate events, then queue them on their runs' inboxes and wake a worker.

One script appends the events, marks their runs ready and sets each run's recovery timer, so
`publish` returns once Redis has every event and never leaves one without a timer that brings
a worker to it. A wake-up job is enqueued only when none is queued yet: however fast events
come, RQ carries a job per worker turn, not per event, and the first event of a quiet spell
wakes a worker at once.

A run is identified by (account, run id), and each event's account is decided here, before it
is queued. Through the API it is the token's (`enqueue`). Through `publish_lines` (the CLI,
the Python API: trusted) it is the event's `data.account_id`; else the account holding a run of
that id, as recorded when that run's first event was published (earlier lines of the same call
included), so steps published after a `run.started` that named the account find its run; else
the publisher's `account`, or the default account. An id several accounts hold is refused,
unless `account` names one of them.
"""

import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import NamedTuple

import orjson

from statemachine.bounds import KEY_ID_PATTERN, key_id_problem
from statemachine.errors import InvalidEvent
from statemachine.events import RunStarted, parse_event
from statemachine.status import Origin
from worker.intake.queue import WAKE_UP, make_queue
from worker.store.durability import confirm_replicas
from worker.store.envelope import Envelope, time_ms
from worker.store.keys import RunRef, ref
from worker.store.owners import AmbiguousRun, choose
from worker.store.runs import Store

JOB_TIMEOUT = 300  # seconds one job may take before RQ gives up on it


@dataclass
class PublishReport:
    accepted: int = 0
    errors: list[tuple[int, str]] = field(default_factory=list)  # (line number, reason)
    job_ids: list[str] = field(default_factory=list)  # wake-up jobs this publish enqueued

    @property
    def ok(self) -> bool:
        return not self.errors


class _Line(NamedTuple):
    """A valid line, before its account is decided."""

    number: int
    run_id: str
    named: str | None  # the account its data names
    text: str


class Publisher:
    def __init__(
        self,
        store: Store,
        queue_name: str = "runstate",
        batch_size: int = 500,
        *,
        default_account: str = "default",
        replica_acks: int = 0,
        replica_ack_timeout: float = 1.0,
    ) -> None:
        self.store = store
        self.queue = make_queue(store.redis, queue_name)
        self.batch_size = batch_size
        self.default_account = _account_id(default_account)
        self.replica_acks, self.replica_ack_timeout = replica_acks, replica_ack_timeout

    def publish_lines(
        self,
        lines: Iterable[str | bytes],
        *,
        account: str | None = None,
        origin: Origin = Origin.EVENT,
        report: PublishReport | None = None,
    ) -> PublishReport:
        """JSON Lines in, numbered from 1; blank lines are skipped but still counted. `account`: of the
        events that name none and whose run id no account holds yet; it also chooses among several.
        Returns once RUNSTATE_REPLICA_ACKS replicas have the valid ones (else raises NotReplicated).
        `report`, when given, is filled as it goes: a caller that Redis cuts off still knows how many
        were stored."""
        report = report if report is not None else PublishReport()
        account = None if account is None else _account_id(account)
        parsed: list[_Line] = []
        for number, line in enumerate(lines, start=1):
            try:
                text = (line.decode() if isinstance(line, bytes) else line).strip()
            except UnicodeDecodeError as exc:
                report.errors.append((number, f"not valid UTF-8: {exc.reason} at byte {exc.start}"))
                continue
            if not text:
                continue
            try:
                event = parse_event(text)
            except InvalidEvent as invalid:
                report.errors.append((number, invalid.detail))
                continue
            named = event.data.account_id if isinstance(event, RunStarted) else None
            parsed.append(_Line(number, event.run_id, named, text))
        valid = self._route(parsed, account, origin, report)
        report.errors.sort()  # the refusals of both passes, in line order
        for chunk in _chunks(valid, self.batch_size):
            job_id = self.enqueue(chunk)
            if job_id is not None:
                report.job_ids.append(job_id)
            report.accepted += len(chunk)
        if valid:
            self.confirm()
        return report

    def _route(
        self, parsed: list[_Line], account: str | None, origin: Origin, report: PublishReport
    ) -> list[tuple[RunRef, Envelope]]:
        """Each line's run, its account decided (module docstring); a line whose id several
        accounts hold is refused into `report`."""
        holders = self.store.owners({line.run_id for line in parsed if line.named is None})
        routed = []
        for line in parsed:
            try:
                owner = line.named or choose(line.run_id, holders.get(line.run_id, set()), account)
            except AmbiguousRun as refusal:
                report.errors.append((line.number, f"run_id: {refusal}"))
                continue
            owner = owner or account or self.default_account
            holders.setdefault(line.run_id, set()).add(owner)  # what the publish records, for later lines
            routed.append((ref(owner, line.run_id), Envelope(line.text, owner, origin)))
        return routed

    def confirm(self) -> None:
        """Wait until RUNSTATE_REPLICA_ACKS replicas have what was enqueued (durability.confirm_replicas)."""
        confirm_replicas(self.store.redis, self.replica_acks, self.replica_ack_timeout)

    def enqueue(self, events: list[tuple[RunRef, Envelope]]) -> str | None:
        """Queue validated events (their run, envelope); the id of the wake-up job this enqueued, if any."""
        inboxes: dict[RunRef, list[bytes]] = {}
        published_at = time_ms()
        for run, envelope in events:
            inboxes.setdefault(run, []).append(orjson.dumps(envelope.to_json(published_at)))
        return self.wake() if self.store.append(inboxes) else None

    def wake(self) -> str:
        """Enqueue one wake-up job: the worker that takes it drains the ready runs."""
        job = self.queue.enqueue_call(WAKE_UP, timeout=JOB_TIMEOUT, result_ttl=0, description="drain ready runs")
        return str(job.id)


def _account_id(account: str) -> str:
    """An account id, checked: it is part of its runs' keys (`worker/store/keys.py`)."""
    if not re.fullmatch(KEY_ID_PATTERN, account):
        raise ValueError(f"account {account!r} {key_id_problem(account)}")
    return account


def _chunks(items: list[tuple[RunRef, Envelope]], size: int) -> Iterator[list[tuple[RunRef, Envelope]]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]
