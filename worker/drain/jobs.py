"""The RQ job functions: the only functions a runstate worker will execute.

A job carries nothing but a wake-up: the events wait in their runs' inboxes in Redis (see
`store`) and the runs in the ready set, so a job lost with its worker loses nothing; the
runs' timers bring a worker back to them.
"""

import os
import re
from typing import Any

import structlog
from rq import get_current_job

from statemachine.errors import PoisonedJob
from worker.drain.turns import drain_ready as drain_ready_runs
from worker.runtime import Runtime
from worker.settings import Settings

log = structlog.get_logger("runstate.jobs")

_runtime: Runtime | None = None
_worker_pid = 0  # the worker process's: a job running elsewhere runs in a forked work horse


def bind(runtime: Runtime) -> None:
    """Called by the worker at start: jobs use its settings and connection."""
    global _runtime, _worker_pid
    _runtime = runtime
    _worker_pid = os.getpid()


def current_runtime() -> Runtime:
    global _runtime
    if _runtime is None:  # a plain `rq worker` started us: read the environment once
        job = get_current_job()
        assert job is not None
        _runtime = Runtime(Settings(), job.connection)
    return _runtime


def drain_ready() -> dict[str, Any]:
    """Apply what is queued for the ready runs, in order, oldest runs first."""
    runtime = current_runtime()
    report = drain_ready_runs(runtime, wake_consumed=True)
    if os.getpid() != _worker_pid:  # a work horse exits after its job: its histograms go now
        runtime.recorder.flush(runtime.redis)
    log.debug("runs.drained", **report.as_dict())
    return report.as_dict()


_RUN_ID = re.compile(r"[A-Za-z0-9_.:\-]{1,128}")
MAX_RUNS_PER_JOB = 10_000


def drain(run_ids: Any) -> dict[str, Any]:
    """The previous version's job, which named its runs: still run, so that jobs queued before an
    upgrade apply their events at once instead of waiting for the runs' timers."""
    job = get_current_job()
    if (
        not isinstance(run_ids, list)
        or len(run_ids) > MAX_RUNS_PER_JOB
        or not all(isinstance(r, str) and _RUN_ID.fullmatch(r) for r in run_ids)
    ):
        raise PoisonedJob(job.id if job else "?", "its argument must be a list of run ids")
    return current_runtime().processor.drain(run_ids).as_dict()


# Every function a worker may execute, by the dotted name RQ stores in a job, with how many
# arguments it takes.
ALLOWED_FUNCTIONS = {f"{__name__}.drain_ready": 0, f"{__name__}.drain": 1}
