"""The RQ job functions: the only functions a runstate worker will execute.

A job names runs whose inboxes hold events; the events themselves wait in Redis (see
`store`), so a job that is lost with its worker loses nothing: the run's timer brings a
worker back to it.
"""

import re
from typing import Any

import structlog
from rq import get_current_job

from statemachine.errors import PoisonedJob
from worker.runtime import Runtime
from worker.settings import Settings

log = structlog.get_logger("runstate.jobs")

_RUN_ID = re.compile(r"[A-Za-z0-9_.:\-]{1,128}")
MAX_RUNS_PER_JOB = 10_000

_runtime: Runtime | None = None


def bind(runtime: Runtime) -> None:
    """Called by the worker at start: jobs use its settings and connection."""
    global _runtime
    _runtime = runtime


def current_runtime() -> Runtime:
    global _runtime
    if _runtime is None:  # a plain `rq worker` started us: read the environment once
        job = get_current_job()
        assert job is not None
        _runtime = Runtime(Settings(), job.connection)
    return _runtime


def drain(run_ids: Any) -> dict[str, Any]:
    """Apply what is queued for these runs, in order."""
    job = get_current_job()
    if (
        not isinstance(run_ids, list)
        or len(run_ids) > MAX_RUNS_PER_JOB
        or not all(isinstance(r, str) and _RUN_ID.fullmatch(r) for r in run_ids)
    ):
        raise PoisonedJob(job.id if job else "?", "its argument must be a list of run ids")
    report = current_runtime().processor.drain(run_ids)
    log.info("runs.drained", runs=len(run_ids), **report.as_dict())
    return report.as_dict()


# Every function a worker may execute, by the dotted name RQ stores in a job.
ALLOWED_FUNCTIONS = frozenset({f"{__name__}.drain"})
