"""RQ's own ceiling and the naive per-event design, measured on the same Redis as runstate.

Both enqueue one job per event and drain them with one `SimpleWorker` (JSON serializer)
pinned like runstate's worker; the figure is jobs (events) per second of that worker's
whole run, process start included, as runstate's is.
"""

import subprocess
import sys
import time

import orjson
from redis import Redis
from rq import Queue
from rq.serializers import JSONSerializer

from benchmarks.common import pinned

_DRAIN = (
    "from redis import Redis; from rq import SimpleWorker, Queue; from rq.serializers import JSONSerializer\n"
    "r = Redis.from_url({url!r}); q = Queue('baseline', connection=r, serializer=JSONSerializer)\n"
    "SimpleWorker([q], connection=r, serializer=JSONSerializer).work(burst=True, logging_level='ERROR')\n"
)


def _drain(redis_url: str, function: str, args: list[object]) -> float:
    """Jobs/s of one SimpleWorker draining one `function` job per argument."""
    redis = Redis.from_url(redis_url)
    redis.flushdb()
    queue = Queue("baseline", connection=redis, serializer=JSONSerializer)
    datas = [Queue.prepare_data(function, args=(arg,), result_ttl=0) for arg in args]
    for start in range(0, len(datas), 1000):
        queue.enqueue_many(datas[start : start + 1000])
    started = time.perf_counter()
    subprocess.run(pinned(1, [sys.executable, "-c", _DRAIN.format(url=redis_url)]), check=True)
    return len(args) / (time.perf_counter() - started)


def rq_noop(redis_url: str, jobs: int) -> float:
    """RQ's ceiling: one no-op job per event."""
    return _drain(redis_url, "benchmarks.baseline_jobs.noop", list(range(jobs)))


def naive(redis_url: str, lines: list[bytes]) -> float:
    """One job per event that builds a Machine and reads and writes the object's hash."""
    return _drain(redis_url, "benchmarks.baseline_jobs.naive", [orjson.loads(line) for line in lines])
