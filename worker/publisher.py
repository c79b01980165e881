"""Validate events, then enqueue them in batches; returns once Redis has them."""

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

from redis import Redis

from statemachine.errors import InvalidEvent
from statemachine.events import parse_event
from statemachine.status import Origin
from worker.envelope import Envelope
from worker.jobs import apply_events
from worker.queueing import make_queue

JOB_TIMEOUT = 300  # seconds one batch may take before RQ gives up on it


@dataclass
class PublishReport:
    accepted: int = 0
    errors: list[tuple[int, str]] = field(default_factory=list)  # (line number, reason)
    job_ids: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.errors


class Publisher:
    def __init__(self, redis: Redis, queue_name: str = "runstate", batch_size: int = 500) -> None:
        self.queue = make_queue(redis, queue_name)
        self.batch_size = batch_size

    def publish_lines(
        self, lines: Iterable[str], *, account: str | None = None, origin: Origin = Origin.EVENT
    ) -> PublishReport:
        """JSON Lines in, numbered from 1; blank lines are skipped but still counted."""
        report = PublishReport()
        valid: list[Envelope] = []
        for number, line in enumerate(lines, start=1):
            text = line.strip()
            if not text:
                continue
            try:
                parse_event(text)
            except InvalidEvent as invalid:
                report.errors.append((number, invalid.detail))
                continue
            valid.append(Envelope(text, account, origin))
        report.job_ids = self.enqueue(valid)
        report.accepted = len(valid)
        return report

    def enqueue(self, envelopes: list[Envelope]) -> list[str]:
        """Enqueue already validated events, `batch_size` to a job, in one pipeline."""
        if not envelopes:
            return []
        datas = [
            self.queue.prepare_data(
                apply_events,
                args=([e.to_json() for e in chunk],),
                timeout=JOB_TIMEOUT,
                result_ttl=0,
                description=f"apply {len(chunk)} events",
            )
            for chunk in _chunks(envelopes, self.batch_size)
        ]
        return [job.id for job in self.queue.enqueue_many(datas)]


def _chunks(items: list[Envelope], size: int) -> Iterator[list[Envelope]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]
