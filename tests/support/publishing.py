"""Events published in-process through the runtime's publisher, as a producer's lines would be."""

import orjson

from worker.runtime import Runtime
from worker.store.keys import RunRef, ref


def publish(runtime: Runtime, *events: dict[str, object]) -> None:
    """Publish each event as one JSON line; every line must be accepted."""
    assert runtime.publisher.publish_lines([orjson.dumps(e).decode() for e in events]).errors == []


def refs(*run_ids: str, account: str = "default") -> list[RunRef]:
    """The runs of these ids of one account (the default one unless named)."""
    return [ref(account, run_id) for run_id in run_ids]


def held(runtime: Runtime, *run_ids: str) -> list[RunRef]:
    """Every run of these ids, whichever accounts hold them (as publishing recorded them)."""
    owners = runtime.store.owners(run_ids)
    return [ref(account, run_id) for run_id in sorted(run_ids) for account in sorted(owners[run_id])]
