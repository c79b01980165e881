"""events/s of `runstate worker --burst` over a published event file, against RQ's ceiling in the same run.

    python -m benchmarks.burst [--runs 1000] [--repeat 3]

Redis runs pinned to CPU 0 and the measured process to CPU 1 (taskset), on a private
redis-server. RQ's ceiling: one no-op job per event, SimpleWorker, JSON serializer.
"""

import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import click
from redis import Redis
from rq import Queue
from rq.serializers import JSONSerializer

from benchmarks.common import pinned, redis_server, run_events, runstate, write_events


def rq_noop_ceiling(redis_url: str, jobs: int) -> float:
    """jobs/s of a SimpleWorker draining `jobs` no-op jobs (JSON)."""
    redis = Redis.from_url(redis_url)
    redis.flushdb()
    queue = Queue("noop", connection=redis, serializer=JSONSerializer)
    datas = [Queue.prepare_data("benchmarks.noop.noop", args=(n,), result_ttl=0) for n in range(jobs)]
    for start in range(0, jobs, 1000):
        queue.enqueue_many(datas[start : start + 1000])
    script = (
        "from redis import Redis; from rq import SimpleWorker, Queue; from rq.serializers import JSONSerializer\n"
        f"r = Redis.from_url({redis_url!r}); q = Queue('noop', connection=r, serializer=JSONSerializer)\n"
        "SimpleWorker([q], connection=r, serializer=JSONSerializer).work(burst=True, logging_level='ERROR')\n"
    )
    started = time.perf_counter()
    subprocess.run(pinned(1, [sys.executable, "-c", script]), check=True)
    return jobs / (time.perf_counter() - started)


def runstate_burst(redis_url: str, events_file: Path, events: int) -> float:
    Redis.from_url(redis_url).flushdb()
    runstate(["publish", str(events_file)], redis_url)
    return events / runstate(["worker", "--burst"], redis_url)


@click.command()
@click.option("--runs", default=1000, show_default=True, help="Runs of 10 events each.")
@click.option("--repeat", default=3, show_default=True, help="Measurements of each; medians are reported.")
def main(runs: int, repeat: int) -> None:
    lines = run_events(runs)
    with tempfile.TemporaryDirectory() as folder, redis_server() as url:
        events_file = write_events(Path(folder) / "events.jsonl", lines)
        ours = [runstate_burst(url, events_file, len(lines)) for _ in range(repeat)]
        ceiling = [rq_noop_ceiling(url, 2000) for _ in range(repeat)]
    ours_median, ceiling_median = statistics.median(ours), statistics.median(ceiling)
    click.echo(f"events: {len(lines)} ({runs} runs x 10), repeats: {repeat}, medians")
    click.echo(
        f"runstate worker --burst : {ours_median:10,.0f} events/s  (all: {', '.join(f'{x:,.0f}' for x in ours)})"
    )
    click.echo(f"RQ no-op job per event  : {ceiling_median:10,.0f} jobs/s    (SimpleWorker, JSON)")
    click.echo(f"ratio                   : {ours_median / ceiling_median:10.1f} x RQ's per-job ceiling")


if __name__ == "__main__":
    main()
