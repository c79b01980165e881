"""runstate's RQ pieces: a JSON-only job class that refuses anything but runstate's own
functions, the queue, and worker classes that record refused jobs instead of running them.
"""

from types import TracebackType
from typing import Any

import orjson
import structlog
from redis import Redis
from rq import Queue, SimpleWorker, Worker
from rq.exceptions import DeserializationError
from rq.job import Job
from rq.serializers import JSONSerializer

from statemachine.errors import PoisonedJob
from worker import jobs
from worker.processor import rejected_record
from worker.store import Store

log = structlog.get_logger("runstate.queue")


class RunstateJob(Job):
    """A job that names a function runstate does not own is refused before anything is imported."""

    @property
    def func(self) -> Any:
        self.refuse_unless_ours()
        return jobs.drain

    def refuse_unless_ours(self) -> None:
        try:
            name = self.func_name
        except DeserializationError:
            raise PoisonedJob(self.id, "its payload is not JSON") from None
        if name not in jobs.ALLOWED_FUNCTIONS:
            raise PoisonedJob(self.id, f"function {str(name)[:200]!r} is not runstate's own")
        if self.instance is not None:
            raise PoisonedJob(self.id, "a job may not carry an instance")

    # Callbacks are imported by name too: a runstate job never has one, so none is ever loaded.
    @property
    def success_callback(self) -> None:
        return None

    @property
    def failure_callback(self) -> None:
        return None

    @property
    def stopped_callback(self) -> None:
        return None


def make_queue(redis: Redis, name: str) -> Queue:
    return Queue(name, connection=redis, serializer=JSONSerializer, job_class=RunstateJob)


def _record_refusal(store: Store) -> Any:
    """An RQ exception handler: a refused or undecodable job becomes a `poisoned_job` record."""

    def handler(job: Job, exc_type: type[BaseException], exc: BaseException, tb: TracebackType | None) -> bool:
        if isinstance(exc, DeserializationError):
            exc = PoisonedJob(job.id, "its payload is not JSON")
        if not isinstance(exc, PoisonedJob):
            return True  # not ours to judge: RQ's default handling goes on
        raw = orjson.dumps({"job_id": job.id}).decode()
        store.reject_orphans([rejected_record(raw, exc, store.now_ms())], {"job.poisoned": 1})
        log.error("job.refused", job_id=job.id, reason=exc.why)
        return False

    return handler


def worker_arguments(redis: Redis, queue_name: str, store: Store) -> dict[str, Any]:
    return {
        "queues": [make_queue(redis, queue_name)],
        "connection": redis,
        "serializer": JSONSerializer,
        "job_class": RunstateJob,
        "exception_handlers": [_record_refusal(store)],
        "disable_default_exception_handler": False,
    }


class RunstateWorker(SimpleWorker):
    """Runs jobs in its own process: a job is a batch of events, so a fork per job is not worth it."""


class RunstateForkingWorker(Worker):
    """Forks a work horse per job (RQ's default model), for isolation over throughput."""
