"""The RQ job functions: the only functions a runstate worker will execute."""

from typing import Any

import structlog
from rq import get_current_job

from statemachine.errors import InvalidEvent
from worker.envelope import Envelope, from_json
from worker.processor import rejected_record
from worker.runtime import Runtime
from worker.settings import Settings

log = structlog.get_logger("runstate.jobs")

_runtime: Runtime | None = None


def bind(runtime: Runtime) -> None:
    """Called by the worker at start: jobs use its settings and connection."""
    global _runtime
    _runtime = runtime


def _current_runtime() -> Runtime:
    global _runtime
    if _runtime is None:  # a plain `rq worker` started us: read the environment once
        job = get_current_job()
        assert job is not None
        _runtime = Runtime(Settings(), job.connection)
    return _runtime


def apply_events(batch: Any) -> dict[str, Any]:
    """Apply a batch of queued events (`[[text, account, origin], ...]`) in order."""
    runtime = _current_runtime()
    if not isinstance(batch, list):
        batch = [batch]
    envelopes: list[Envelope] = []
    malformed: list[bytes] = []
    for item in batch:
        try:
            envelopes.append(from_json(item))
        except ValueError as exc:
            now = runtime.store.now_ms()
            malformed.append(rejected_record(_as_text(item), InvalidEvent((str(exc),)), now))
    if malformed:
        runtime.store.reject_orphans(malformed, {"event.rejected": len(malformed)})
    report = runtime.processor.process(envelopes)
    log.info("batch.applied", events=len(envelopes), **report.as_dict())
    return report.as_dict()


def _as_text(item: Any) -> str:
    import orjson

    try:
        return orjson.dumps(item).decode()
    except TypeError:
        return repr(item)[:1000]


# Every function a worker may execute, by the dotted name RQ stores in a job.
ALLOWED_FUNCTIONS = frozenset({f"{__name__}.apply_events"})
