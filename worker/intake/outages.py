"""RQ's worker, made to ride out Redis faults (see `worker.store.outage`) instead of exiting.

RQ's work loop quits on any exception it did not expect, and then fails again registering
its death against the same Redis, so a worker inside a job or RQ's pre-job step when Redis
went away used to end with exit 1. Here every step of that loop turns a Redis fault into
`RedisOutage`, which RQ's loop leaves quietly; leaving does not need Redis; and
`work_until_stopped` waits (backing off) until Redis takes writes again, then starts the loop
anew. A job cut short loses nothing: its events stay in their inboxes and its runs' timers
bring a worker back to them.
"""

import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import structlog
from rq.exceptions import StopRequested

from worker.store.outage import Outage, is_fault, probe

log = structlog.get_logger("runstate.worker")


class RedisOutage(StopRequested):
    """A Redis fault in RQ's work loop. A `StopRequested`, because that is what RQ's loop leaves
    without logging a crash; `work_until_stopped` tells the two apart by `fault`."""

    def __init__(self, error: BaseException) -> None:
        super().__init__(str(error))
        self.error = error


class RidesOutRedis:
    """A mixin for RQ's worker classes: each step of RQ's work loop hands a Redis fault to
    `work_until_stopped` instead of letting RQ quit on it."""

    fault: BaseException | None = None  # the fault that ended the last work loop, if one did
    stopping = False  # SIGTERM or SIGINT (or RQ's shutdown command) was received

    @contextmanager
    def _faults_leave_the_loop(self) -> Iterator[None]:
        try:
            yield
        except RedisOutage:
            raise
        except Exception as error:
            if not is_fault(error):
                raise
            self.fault = error
            raise RedisOutage(error) from error

    def check_for_suspension(self, burst: bool) -> None:
        with self._faults_leave_the_loop():
            super().check_for_suspension(burst)  # type: ignore[misc]

    def run_maintenance_tasks(self) -> None:
        with self._faults_leave_the_loop():
            super().run_maintenance_tasks()  # type: ignore[misc]

    def heartbeat(self, *args: Any, **kwargs: Any) -> None:
        with self._faults_leave_the_loop():
            super().heartbeat(*args, **kwargs)  # type: ignore[misc]

    def dequeue_job_and_maintain_ttl(self, timeout: int | None, max_idle_time: int | None = None) -> Any:
        """RQ retries a lost connection here, but quits on any other fault: a write refused by a
        Redis that filled up (or became a replica) between the heartbeat and the dequeue."""
        with self._faults_leave_the_loop():
            return super().dequeue_job_and_maintain_ttl(timeout, max_idle_time)  # type: ignore[misc]

    def execute_job(self, job: Any, queue: Any) -> None:
        """Redis failing inside a job fails RQ's failure handling too: that is caught here."""
        with self._faults_leave_the_loop():
            super().execute_job(job, queue)  # type: ignore[misc]

    def handle_warm_shutdown_request(self) -> None:
        self.stopping = True
        super().handle_warm_shutdown_request()  # type: ignore[misc]

    def teardown(self) -> None:
        """Leaving the loop. With Redis down, registering the death fails: the worker's key then
        expires on its own (RQ gives it a TTL), and `work_until_stopped` registers it on return."""
        worker: Any = self
        if worker.is_horse:  # a forked work horse leaves the worker's registration alone, as in RQ
            return
        if worker.scheduler:
            worker.stop_scheduler()
        worker.unsubscribe()
        try:
            worker.register_death()
        except Exception as error:
            if not is_fault(error):
                raise

    def unsubscribe(self) -> None:
        """Stop listening on RQ's command channel without a Redis command (RQ unsubscribes first,
        which fails with Redis down and leaves the thread running): closing the connection is enough."""
        worker: Any = self
        thread = getattr(worker, "pubsub_thread", None)
        if thread is not None:
            thread.stop()
            thread.join(timeout=1)
            worker.pubsub.close()
            worker.pubsub_thread = None

    def _pubsub_exception_handler(self, exc: Exception, pubsub: Any, pubsub_thread: Any) -> None:
        """The command channel's thread during an outage: quietly wait and reconnect (the work loop
        reports the outage; RQ logs every attempt)."""
        if not is_fault(exc):
            raise exc
        time.sleep(1.0)


def work_until_stopped(rq_worker: Any, *, burst: bool, logging_level: str) -> None:
    """RQ's work loop, started again after each Redis outage, until a stop is requested (or, with
    `burst`, until no work is left)."""
    outage = Outage("worker")
    while True:
        again, rq_worker.fault = rq_worker.fault is not None, None
        try:
            if again:  # the outage kept the last loop from registering its death; RQ refuses a rebirth without it
                rq_worker.register_death()
            rq_worker.work(burst=burst, logging_level=logging_level)
        except StopRequested:
            pass  # SIGTERM between two loops
        except Exception as error:  # Redis failed in RQ's start-up (outside its loop)
            if not is_fault(error):
                raise
            rq_worker.fault = error
        if rq_worker.stopping or rq_worker.fault is None or not _wait_for_redis(rq_worker, outage):
            return


def _wait_for_redis(rq_worker: Any, outage: Outage) -> bool:
    """True once Redis takes writes again; False when a stop is requested meanwhile (RQ's signal
    handler raises StopRequested, or fails on Redis, inside the wait)."""
    error: BaseException = rq_worker.fault
    while not rq_worker.stopping:
        try:
            time.sleep(outage.failed(error))
            probe(rq_worker.connection)
        except StopRequested:
            return False
        except Exception as failed:
            if not is_fault(failed):
                raise
            error = failed
            continue
        outage.recovered()
        return True
    return False
