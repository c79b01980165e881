"""Deadline lag: N deadlines falling due over a span of seconds, fired by two live workers.

    python -m benchmarks.deadlines [--count 10000] [--span 60] [--workers 2] [--inactivity]

Prints the lag from due to applied (p50, p99, max) and counts fired early, missed and
twice. `--inactivity`: the runs time out for silence instead (`inactivity_timeout_seconds`),
each heard from once more by a heartbeat halfway through the lead, so most of their timers
first come due at the old deadline, find the run alive and move on to the new one.
Redis runs pinned to CPU 0 and the workers to CPU 1 (taskset), on a private redis-server.
"""

import os
import statistics
import time

import click
import orjson
from redis import Redis

from benchmarks.common import percentile, pinned, redis_server, start_runstate
from statemachine.models import Transition
from worker.runtime import Runtime
from worker.settings import Settings


@click.command()
@click.option("--count", default=10_000, show_default=True)
@click.option("--span", default=60.0, show_default=True, help="Seconds over which the deadlines fall due.")
@click.option("--workers", default=2, show_default=True)
@click.option(
    "--inactivity", is_flag=True, help="Inactivity timeouts (with one heartbeat each) instead of run timeouts."
)
def main(count: int, span: float, workers: int, inactivity: bool) -> None:
    with redis_server() as url:
        os.environ["REDIS_URL"] = url
        runtime = Runtime.connect(Settings())
        procs = [start_runstate(["worker"], url) for _ in range(workers)]
        try:
            start = runtime.store.now_ms() / 1000
            lead = 5.0  # the first deadline falls due after everything is published and applied
            field = "inactivity_timeout_seconds" if inactivity else "timeout_seconds"
            lines = [
                orjson.dumps(
                    {
                        "id": "s",
                        "type": "run.started",
                        "run_id": f"d{n}",
                        "occurred_at": start,
                        "data": {field: lead + span * n / count},
                    }
                ).decode()
                for n in range(count)
            ]
            runtime.publisher.publish_lines(lines)
            if inactivity:
                time.sleep(max(0.0, start + lead / 2 - runtime.store.now_ms() / 1000))
                beats = [f'{{"id": "h", "type": "run.heartbeat", "run_id": "d{n}"}}' for n in range(count)]
                runtime.publisher.publish_lines(beats)
            deadline = time.monotonic() + lead + span + 30
            redis = Redis.from_url(url)
            while time.monotonic() < deadline:
                if runtime.store.stats().get("deadlines", 0) >= count:
                    break
                time.sleep(0.5)
            time.sleep(2)  # anything fired twice would show up by now
        finally:
            for proc in procs:
                proc.terminate()
            for proc in procs:
                proc.wait(timeout=60)
        lags, early, twice, missed = [], 0, 0, 0
        for n in range(count):
            entries = [Transition.model_validate_json(x) for x in redis.lrange(f"runstate:history:{{d{n}}}", 0, -1)]
            fired = [t for t in entries if t.to == "timeout"]
            if not fired:
                missed += 1
                continue
            twice += len(fired) > 1
            lag = fired[0].applied_at - fired[0].at
            early += lag < 0
            lags.append(lag)
    kind = "inactivity timeouts" if inactivity else "deadlines"
    click.echo(f"{kind}: {count} over {span:g} s, {workers} workers (taskset: {'yes' if pinned(1, []) else 'no'})")
    if lags:
        click.echo(
            f"lag due -> applied: p50 {percentile([float(x) for x in lags], 0.5):.0f} ms, "
            f"p99 {percentile([float(x) for x in lags], 0.99):.0f} ms, "
            f"max {max(lags)} ms, mean {statistics.mean(lags):.0f} ms"
        )
    click.echo(f"early: {early}, missed: {missed}, twice: {twice}")


if __name__ == "__main__":
    main()
