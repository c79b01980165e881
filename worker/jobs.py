"""The RQ job functions: the only functions a runstate worker will execute.

A job carries nothing but a wake-up: the events wait in their runs' inboxes in Redis (see
`store`) and the runs in the ready set, so a job lost with its worker loses nothing; the
runs' timers bring a worker back to them.
"""

from typing import Any

import structlog
from rq import get_current_job

from worker.ready import drain_ready as drain_ready_runs
from worker.runtime import Runtime
from worker.settings import Settings

log = structlog.get_logger("runstate.jobs")

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


def drain_ready() -> dict[str, Any]:
    """Apply what is queued for the ready runs, in order, oldest runs first."""
    report = drain_ready_runs(current_runtime(), wake_consumed=True)
    log.debug("runs.drained", **report.as_dict())
    return report.as_dict()


# Every function a worker may execute, by the dotted name RQ stores in a job.
ALLOWED_FUNCTIONS = frozenset({f"{__name__}.drain_ready"})
