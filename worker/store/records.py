"""Rejected records: an event a worker refused (or a job it would not run), kept with its reason
(docs/design.md, "Records"). Built here, where they are stored."""

import orjson

from statemachine.errors import RunstateError
from statemachine.timefmt import rfc3339

MAX_KEPT_BYTES = 262_144  # a rejected event is kept whole up to the size a valid one may have


def rejected_record(raw: str, error: RunstateError, at: int) -> bytes:
    """docs/design.md's rejected record ("Records"); the raw event is kept as JSON when it is JSON it can hold."""
    record = {"event": raw[:MAX_KEPT_BYTES], "reason": error.code, "detail": error.detail, "at": rfc3339(at)}
    if len(raw) <= MAX_KEPT_BYTES:
        try:
            return orjson.dumps({**record, "event": orjson.loads(raw)})
        except (orjson.JSONDecodeError, TypeError):  # not JSON, or nested beyond what JSON tools take
            pass
    return orjson.dumps(record)
