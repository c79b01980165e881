"""Validate events, then queue them on their runs' inboxes and wake a worker.

One script appends the events, marks their runs ready and sets each run's recovery timer, so
`publish` returns once Redis has every event and never leaves one without a timer that brings
a worker to it. A wake-up job is enqueued only when none is queued yet: however fast events
come, RQ carries a job per worker turn, not per event, and the first event of a quiet spell
wakes a worker at once.
"""

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

import orjson

from statemachine.errors import InvalidEvent
from statemachine.events import parse_event
from statemachine.status import Origin
from worker.intake.queue import WAKE_UP, make_queue
from worker.store.durability import confirm_replicas
from worker.store.envelope import Envelope, time_ms
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


class Publisher:
    def __init__(
        self,
        store: Store,
        queue_name: str = "runstate",
        batch_size: int = 500,
        *,
        replica_acks: int = 0,
        replica_ack_timeout: float = 1.0,
    ) -> None:
        self.store = store
        self.queue = make_queue(store.redis, queue_name)
        self.batch_size = batch_size
        self.replica_acks, self.replica_ack_timeout = replica_acks, replica_ack_timeout

    def publish_lines(
        self,
        lines: Iterable[str | bytes],
        *,
        account: str | None = None,
        origin: Origin = Origin.EVENT,
        report: PublishReport | None = None,
    ) -> PublishReport:
        """JSON Lines in, numbered from 1; blank lines are skipped but still counted. Returns once
        RUNSTATE_REPLICA_ACKS replicas have the valid ones (else raises NotReplicated). `report`,
        when given, is filled as it goes: a caller that Redis cuts off still knows how many were stored."""
        report = report if report is not None else PublishReport()
        valid: list[tuple[str, Envelope]] = []
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
            valid.append((event.run_id, Envelope(text, account, origin)))
        for chunk in _chunks(valid, self.batch_size):
            job_id = self.enqueue(chunk)
            if job_id is not None:
                report.job_ids.append(job_id)
            report.accepted += len(chunk)
        if valid:
            self.confirm()
        return report

    def confirm(self) -> None:
        """Wait until RUNSTATE_REPLICA_ACKS replicas have what was enqueued (durability.confirm_replicas)."""
        confirm_replicas(self.store.redis, self.replica_acks, self.replica_ack_timeout)

    def enqueue(self, events: list[tuple[str, Envelope]]) -> str | None:
        """Queue validated events (run id, envelope); the id of the wake-up job this enqueued, if any."""
        inboxes: dict[str, list[bytes]] = {}
        published_at = time_ms()
        for run_id, envelope in events:
            inboxes.setdefault(run_id, []).append(orjson.dumps(envelope.to_json(published_at)))
        return self.wake() if self.store.append(inboxes) else None

    def wake(self) -> str:
        """Enqueue one wake-up job: the worker that takes it drains the ready runs."""
        job = self.queue.enqueue_call(WAKE_UP, timeout=JOB_TIMEOUT, result_ttl=0, description="drain ready runs")
        return str(job.id)


def _chunks(items: list[tuple[str, Envelope]], size: int) -> Iterator[list[tuple[str, Envelope]]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]
