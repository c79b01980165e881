"""Redis memory per finished 10-event run, and what retention leaves of it.

`used_memory` before and after publishing and draining N runs (start, 4 steps created and
completed, end), divided by N; the keys of one run measured with MEMORY USAGE; then the same
with a short RUNSTATE_RETENTION, read again once the runs' keys expired (the tombstones
left) and once the tombstones expired too.
"""

import os
import tempfile
import time
from pathlib import Path

from redis import Redis

from benchmarks.common import run_events, runstate, write_events
from worker.runtime import Runtime
from worker.settings import Settings
from worker.store import keys

RETENTION = 3  # seconds, for the retention measurement


def _used(redis: Redis) -> int:
    return int(redis.info("memory")["used_memory"])


def _fill(redis_url: str, runs: int, **env: str) -> None:
    with tempfile.TemporaryDirectory() as folder:
        events = write_events(Path(folder) / "events.jsonl", run_events(runs))
        runstate(["publish", str(events)], redis_url, 1, **env)
        runstate(["worker", "--burst"], redis_url, 1, **env)


def measure(redis_url: str, runs: int = 1000) -> dict[str, float]:
    redis = Redis.from_url(redis_url)
    redis.flushdb()
    before = _used(redis)
    _fill(redis_url, runs)
    per_run = (_used(redis) - before) / runs
    one = keys.ref("default", "run_0")
    parts = {
        "document": redis.memory_usage(keys.run(one)) or 0,
        "history": redis.memory_usage(keys.history(one)) or 0,
        "seen ids": redis.memory_usage(keys.seen(one)) or 0,
        "tombstone": redis.memory_usage(keys.tombstone(one)) or 0,
    }
    redis.flushdb()
    before = _used(redis)
    _fill(redis_url, runs, RUNSTATE_RETENTION=str(RETENTION))
    finished = time.monotonic()
    store = Runtime(Settings(retention=RETENTION), redis).store
    time.sleep(max(0.0, finished + RETENTION + 0.5 - time.monotonic()))
    while store.prune_expired(500) == 500:  # what every worker's sweep does every 10 s
        pass
    after_retention = (_used(redis) - before) / runs
    time.sleep(max(0.0, finished + 2 * RETENTION + 0.5 - time.monotonic()))
    while store.prune_expired(500) == 500:  # the next sweep: the run ids' owners go with the tombstones
        pass
    after_tombstones = (_used(redis) - before) / runs
    return {
        "per_run": per_run,
        **{f"key: {name}": size for name, size in parts.items()},
        "after_retention": after_retention,
        "after_tombstones": after_tombstones,
        "runs_indexed_after_retention": redis.zcard(keys.RUNS),
    }


if __name__ == "__main__":
    from benchmarks.common import redis_server

    with redis_server() as url:
        os.environ["REDIS_URL"] = url
        for name, value in measure(url).items():
            print(f"{name:30} {value:10,.0f}")
