"""`runstate worker`: an RQ worker on runstate's one queue, with the timer sweep beside it."""

import gc
import math

import structlog

from worker.drain import jobs
from worker.drain.sweeper import Sweeper
from worker.drain.turns import drain_ready
from worker.intake.outages import work_until_stopped
from worker.intake.queue import make_worker
from worker.runtime import Runtime
from worker.store.durability import warn_at_start
from worker.store.outage import Outage, patiently

log = structlog.get_logger("runstate.worker")

GC_THRESHOLD = 20_000  # allocations between young collections (Python's default: 700)


def tune_garbage_collector() -> None:
    """A drain allocates many short-lived objects and almost no cycles: collect the young
    generation less often, and keep what was imported out of every full collection. For a
    worker process only (it changes the whole process), so `runstate worker` calls it."""
    gc.freeze()
    gc.set_threshold(GC_THRESHOLD, *gc.get_threshold()[1:])


def run_worker(runtime: Runtime, *, burst: bool, fork: bool, log_level: str = "info") -> None:
    """Work until stopped (SIGTERM finishes the current job first), or with `burst` until no work
    is left; a Redis outage is waited out, never a reason to exit."""
    jobs.bind(runtime)
    if not runtime.embedded:
        warn_at_start(runtime.redis)
    queue = runtime.settings.queue_name
    rq_worker = patiently(  # RQ's worker names its connection at once: Redis may be failing over right then
        lambda: make_worker(runtime.redis, queue, runtime.store, fork=fork, commands=not burst), Outage("worker")
    )
    sweeper = Sweeper(runtime.with_own_connection())
    level = (runtime.settings.log_level or log_level).upper()
    if burst:
        # what is ready and what fell due while no worker ran, taken directly: burst workers
        # started together share the ready runs instead of waiting for wake-up jobs
        sweeper.sweep_safely()
        drain_ready(runtime, wake_consumed=False, seconds=math.inf)
        work_until_stopped(rq_worker, burst=True, logging_level=level)
        sweeper.sweep_safely()
        sweeper.flush_safely()
        return
    with sweeper.running():
        work_until_stopped(rq_worker, burst=False, logging_level=level)
