"""Validate events, then queue them: onto their runs' inboxes, with RQ jobs naming the runs.

Both are written in one MULTI/EXEC, so `publish` returns once Redis has every event and
never leaves an event without a job or a timer that will bring a worker to it.
"""

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

import orjson

from statemachine.errors import InvalidEvent
from statemachine.events import parse_event
from statemachine.status import Origin
from worker.envelope import Envelope
from worker.jobs import drain
from worker.queueing import make_queue
from worker.store import Store

JOB_TIMEOUT = 300  # seconds one job may take before RQ gives up on it


@dataclass
class PublishReport:
    accepted: int = 0
    errors: list[tuple[int, str]] = field(default_factory=list)  # (line number, reason)
    job_ids: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.errors


class Publisher:
    def __init__(self, store: Store, queue_name: str = "runstate", batch_size: int = 500) -> None:
        self.store = store
        self.queue = make_queue(store.redis, queue_name)
        self.batch_size = batch_size

    def publish_lines(
        self, lines: Iterable[str | bytes], *, account: str | None = None, origin: Origin = Origin.EVENT
    ) -> PublishReport:
        """JSON Lines in, numbered from 1; blank lines are skipped but still counted."""
        report = PublishReport()
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
            report.job_ids.append(self.enqueue(chunk))
        report.accepted = len(valid)
        return report

    def enqueue(self, events: list[tuple[str, Envelope]]) -> str:
        """Queue validated events (run id, envelope) and one job naming their runs, atomically."""
        inboxes: dict[str, list[bytes]] = {}
        for run_id, envelope in events:
            inboxes.setdefault(run_id, []).append(orjson.dumps(envelope.to_json()))
        job_data = self.queue.prepare_data(
            drain, args=(list(inboxes),), timeout=JOB_TIMEOUT, result_ttl=0, description=f"drain {len(inboxes)} runs"
        )
        with self.store.redis.pipeline(transaction=True) as pipe:
            self.store.append(inboxes, pipe)
            (job,) = self.queue.enqueue_many([job_data], pipeline=pipe)
            pipe.execute()
        return str(job.id)


def _chunks(items: list[tuple[str, Envelope]], size: int) -> Iterator[list[tuple[str, Envelope]]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]
