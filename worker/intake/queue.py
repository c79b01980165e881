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
from worker.intake.outages import RidesOutRedis
from worker.store.records import rejected_record
from worker.store.runs import Store

log = structlog.get_logger("runstate.queue")

COMMAND_POLL = 0.5  # seconds between polls of RQ's command channel: bounds how long SIGTERM waits for it

# Every function a worker may execute, by the dotted name RQ stores in a job. Named, not
# imported: the intake sits below the drain that defines it, and RQ imports it only after
# `refuse_unless_ours` has passed (a test holds each name against a real function).
WAKE_UP = "worker.drain.jobs.drain_ready"
ALLOWED_FUNCTIONS = frozenset({WAKE_UP})


class RunstateJob(Job):
    """A job that names a function runstate does not own is refused before anything is imported."""

    @property
    def func(self) -> Any:
        self.refuse_unless_ours()
        return super().func

    def restore(self, raw_data: Any) -> Any:
        """RQ restores more than the function from a job hash: webhooks it would POST to, retries
        and repeats it would schedule, dependencies. A runstate job has none of them, so a forged
        job gets none of them either."""
        result = super().restore(raw_data)
        self.webhooks = []
        self.retries_left = None
        self.retry_intervals = None
        self.repeats_left = None
        self.repeat_intervals = None
        self._dependency_ids = []
        return result

    def refuse_unless_ours(self) -> None:
        try:
            name, args, kwargs = self.func_name, self.args, self.kwargs
        except DeserializationError:
            raise PoisonedJob(self.id, "its payload is not JSON") from None
        if not isinstance(name, str) or name not in ALLOWED_FUNCTIONS:
            raise PoisonedJob(self.id, f"function {str(name)[:200]!r} is not runstate's own")
        if self.instance is not None:
            raise PoisonedJob(self.id, "a job may not carry an instance")
        if not isinstance(args, list | tuple) or len(args) != 0 or kwargs not in ({}, None):
            raise PoisonedJob(self.id, "a wake-up job takes no arguments")

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


def _record(store: Store, job_id: str, why: str) -> None:
    refusal = PoisonedJob(job_id[:200], why)
    raw = orjson.dumps({"job_id": job_id[:200]}).decode()
    store.reject_orphans([rejected_record(raw, refusal, store.now_ms())], {"job.poisoned": 1})
    log.error("job.refused", job_id=job_id[:200], reason=why)


def _refusal_handler(store: Store) -> Any:
    """An RQ exception handler: a refused or undecodable job becomes a `poisoned_job` record."""

    def handler(job: Job, exc_type: type[BaseException], exc: BaseException, tb: TracebackType | None) -> bool:
        if isinstance(exc, DeserializationError):
            exc = PoisonedJob(job.id, "its payload is not JSON")
        if not isinstance(exc, PoisonedJob):
            return True  # not ours to judge: RQ's default handling goes on
        _record(store, job.id, exc.why)
        return False

    return handler


class _RefusesGarbage:
    """Queue entries RQ cannot even fetch (a malformed id, a broken job hash) are recorded and
    dropped, instead of stopping the worker as RQ does by default."""

    runstate_store: Store
    listens_for_commands = True  # False for a burst worker: it exits on its own

    def subscribe(self) -> None:
        """RQ's command channel (stop a job, kill a horse), polled every COMMAND_POLL seconds:
        RQ polls it every 60 s and waits for the poll to end at SIGTERM, so an idle worker could
        take a minute to stop. A burst worker skips it: it exits on its own."""
        if not self.listens_for_commands:
            return
        worker: Any = self
        worker.unsubscribe()  # a loop that Redis ended in its start-up may have left one behind
        worker.pubsub = worker.connection.pubsub()
        worker.pubsub.subscribe(**{worker.pubsub_channel_name: worker.handle_payload})
        worker.pubsub_thread = worker.pubsub.run_in_thread(
            sleep_time=COMMAND_POLL, daemon=True, exception_handler=worker._pubsub_exception_handler
        )

    def dequeue_job_and_maintain_ttl(self, timeout: int | None, max_idle_time: int | None = None) -> Any:
        while True:
            try:
                return super().dequeue_job_and_maintain_ttl(timeout, max_idle_time)  # type: ignore[misc]
            except Exception as exc:
                job_id = getattr(exc, "job_id", None)
                if job_id is None:
                    raise
                queue = getattr(exc, "queue", None)
                if queue is not None:
                    self.runstate_store.redis.lrem(f"{queue.key}:intermediate", 0, job_id)
                _record(self.runstate_store, str(job_id), f"cannot be read: {type(exc).__name__}: {exc}"[:300])


class RunstateWorker(RidesOutRedis, _RefusesGarbage, SimpleWorker):
    """Runs jobs in its own process: a job drains many events, so a fork per job is not worth it."""


class RunstateForkingWorker(RidesOutRedis, _RefusesGarbage, Worker):
    """Forks a work horse per job (RQ's default model), for isolation over throughput."""


def make_worker(
    redis: Redis, queue_name: str, store: Store, *, fork: bool = False, commands: bool = True
) -> SimpleWorker | Worker:
    """A worker on exactly one queue: RQ then dequeues with LMOVE, which a crash cannot lose.
    `commands`: listen on RQ's command channel (a burst worker does not)."""
    worker_class = RunstateForkingWorker if fork else RunstateWorker
    worker = worker_class(
        queues=[make_queue(redis, queue_name)],
        connection=redis,
        serializer=JSONSerializer,
        job_class=RunstateJob,
        exception_handlers=[_refusal_handler(store)],
    )
    worker.runstate_store = store
    worker.listens_for_commands = commands
    return worker
