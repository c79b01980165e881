"""Events published in-process through the runtime's publisher, as a producer's lines would be."""

import orjson

from worker.runtime import Runtime


def publish(runtime: Runtime, *events: dict[str, object]) -> None:
    """Publish each event as one JSON line; every line must be accepted."""
    assert runtime.publisher.publish_lines([orjson.dumps(e).decode() for e in events]).errors == []
