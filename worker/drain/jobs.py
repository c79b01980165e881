"""The RQ job functions: the only functions a runstate worker will execute.

A job carries nothing but a wake-up: the events wait in their runs' inboxes in Redis (see
`worker.store`) and the runs in the ready set, so a job lost with its worker loses nothing;
the runs' timers bring a worker back to them. Jobs name these functions as text
(`worker.intake.queue.ALLOWED_FUNCTIONS`), resolved by RQ only after that allowlist's check.
"""

import os
from typing import Any

import structlog

from worker.drain.parts import DrainParts
from worker.drain.turns import drain_ready as drain_ready_runs

log = structlog.get_logger("runstate.jobs")

_parts: DrainParts | None = None
_worker_pid = 0  # the worker process's: a job running elsewhere runs in a forked work horse


def bind(parts: DrainParts) -> None:
    """Called by the worker at start: jobs use its settings and connection."""
    global _parts, _worker_pid
    _parts = parts
    _worker_pid = os.getpid()


def bound() -> DrainParts:
    if _parts is None:
        raise RuntimeError("runstate's jobs run only in `runstate worker`, which binds them to its connection")
    return _parts


def drain_ready() -> dict[str, Any]:
    """Apply what is queued for the ready runs, in order, oldest runs first."""
    parts = bound()
    report = drain_ready_runs(parts, wake_consumed=True)
    if os.getpid() != _worker_pid:  # a work horse exits after its job: its histograms go now
        parts.recorder.flush(parts.redis)
    log.debug("runs.drained", **report.as_dict())
    return report.as_dict()
