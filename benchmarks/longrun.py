"""Per-event cost as a run grows long: does applying an event stay flat when the run already
holds thousands of steps, as a long-lived coding agent's run does?

    python -m benchmarks.longrun [--steps 10,1000,5000] [--events 40] [--batches 2] [--repeat 3]

In each round, for each N of `--steps` in turn, a fresh run is built with N steps, each created
and completed (most steps of a long run are closed): its events published in chunks of 1,000,
drained after each. Then, on that run, per event:

- (a) live traffic: `--events` events, each published and drained on its own (a new step
  created, then completed, alternating), as a live agent sends them;
- (b) batches: `--batches` drains of 100 such events each, as a worker behind its producers
  finds them;
- (c) reads through the HTTP API (the app in this process, Starlette's TestClient): a page of 20
  steps as Azure's SDK asks for it, one step by id, and the whole run (its totals sum every step),
  each the median of `--reads` requests.

Each gives the wall time of publish + drain, the worker's CPU (this process while it drains,
its commit thread included) and Redis's (INFO cpu). Each figure is also given as the median
over the rounds of its ratio to the smallest N's in the same round: a flat cost reads ~1.0x
whatever the machine's speed. The measured events add steps (`events / 2`, then 50 a batch),
so the smallest N is really "N to a hundred or so more": the counts are kept small for that.

After each build: the run document's size (HSTRLEN of the `d` field of its run key), the Redis
memory of the keys that carry the run's hash tag (MEMORY USAGE, exact; the step index, one key
per step tagged by step id, is not among them) and the build's seconds.

Only public pieces are used (`Runtime.connect`, `publisher.publish_lines`, `processor.drain`,
`worker.store.keys`, `worker.api.app.create_app`), in this process (no RQ worker, no process
start), so the same file measures any checkout: copy it into the checkout's benchmarks/ and run
it there with PYTHONPATH=<checkout>.
A private redis-server runs pinned to CPU 0 and this process to CPU 1 (taskset).
"""

import os
import statistics
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, NamedTuple

import click
import orjson
from fastapi.testclient import TestClient
from redis import Redis

from benchmarks.common import PIN, redis_server
from worker.api.app import create_app
from worker.runtime import Runtime
from worker.settings import Settings
from worker.store import keys

if TYPE_CHECKING:  # only the drain's return type: the rest of the processor may change
    from worker.drain.processor import BatchReport

CHUNK = 1000  # history events per publish and drain while building a run
THREAD = "thread_longrun"  # the runs' thread, for Azure's step list
TOKEN = "tok_longrun"  # noqa: S105 - the benchmark's own API token, on its private Redis
HEADERS = {"authorization": f"Bearer {TOKEN}"}
BATCH = 100  # events per drain in (b)


class Cost(NamedTuple):
    """Per event, in µs."""

    wall: float  # publish + drain
    worker: float  # this process's CPU while draining (all its threads)
    redis: float  # redis-server's CPU meanwhile (INFO cpu, user + sys)


class Size(NamedTuple):
    document: int  # bytes of the run document (the `d` field)
    keys: int  # MEMORY USAGE summed over the run's keys


class Reads(NamedTuple):
    """Per request, in µs (wall: the app runs in this process)."""

    page: float  # 20 steps, Azure's list
    step: float  # one step by id
    run: float  # the whole run, re-factor's shape


class Round(NamedTuple):
    """One round's figures for one N."""

    live: Cost
    batches: Cost
    reads: Reads
    size: Size  # after the build
    built: float  # seconds the build took


def _step(run_id: str, step: str, done: bool) -> bytes:
    """A step's created or completed event, with the data a real agent's step carries."""
    if done:
        data = {"usage": {"prompt_tokens": 100, "completion_tokens": 20}, "cost_usd": 0.0004}
        return orjson.dumps(
            {"id": f"{step}d", "type": "step.completed", "run_id": run_id, "step_id": step, "data": data}
        )
    data = {"model": "gpt-4o", "provider_name": "openai"}
    return orjson.dumps({"id": f"{step}c", "type": "step.created", "run_id": run_id, "step_id": step, "data": data})


def _steps(run_id: str, prefix: str, count: int) -> list[bytes]:
    """`count` events: steps `<prefix><i>` created, then completed, alternating."""
    return [_step(run_id, f"{prefix}{i // 2}", done=i % 2 == 1) for i in range(count)]


class Bench:
    """A connection to the private Redis and what it takes to publish, drain and read one run."""

    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        self.redis: Redis = runtime.redis
        self.account = runtime.settings.default_account

    def publish_and_drain(self, run_id: str, lines: list[bytes]) -> float:
        """Publish `lines` for `run_id` and drain it; returns the drain's CPU seconds."""
        published = self.runtime.publisher.publish_lines(lines)
        if published.errors:
            raise RuntimeError(f"publish refused: {published.errors[:3]}")
        cpu = time.process_time()
        report = self.runtime.processor.drain([keys.ref(self.account, run_id)])
        used = time.process_time() - cpu
        _check(report, len(lines))
        return used

    def build(self, run_id: str, steps: int) -> None:
        """A run holding `steps` closed steps."""
        data = {"runnable_id": "longrun", "thread_id": THREAD}  # Azure's steps are read on a thread
        start = {"id": "start", "type": "run.started", "run_id": run_id, "data": data}
        lines = [orjson.dumps(start), *_steps(run_id, "h", 2 * steps)]
        for first in range(0, len(lines), CHUNK):
            self.publish_and_drain(run_id, lines[first : first + CHUNK])

    def measure(self, run_id: str, batches: list[list[bytes]]) -> Cost:
        """Each batch published then drained, one after another: the cost per event."""
        events = sum(len(batch) for batch in batches)
        redis_cpu, drained = self._redis_cpu(), 0.0
        started = time.perf_counter()
        for batch in batches:
            drained += self.publish_and_drain(run_id, batch)
        wall = time.perf_counter() - started
        redis_used = self._redis_cpu() - redis_cpu
        return Cost(1e6 * wall / events, 1e6 * drained / events, 1e6 * redis_used / events)

    def reads(self, api: TestClient, run_id: str, count: int) -> Reads:
        """Each read `count` times: the median µs of each."""

        def median_us(path: str) -> float:
            took = []
            for _ in range(count):
                started = time.perf_counter()
                answer = api.get(path, headers=HEADERS)
                took.append(time.perf_counter() - started)
                if answer.status_code != 200:
                    raise RuntimeError(f"GET {path}: {answer.status_code} {answer.text[:200]}")
            return 1e6 * statistics.median(took)

        return Reads(
            median_us(f"/azure/threads/{THREAD}/runs/{run_id}/steps?limit=20"),
            median_us(f"/v1/runs/{run_id}/steps/h7"),
            median_us(f"/v1/run/{run_id}"),
        )

    def size(self, run_id: str) -> Size:
        run = keys.ref(self.account, run_id)
        document = int(self.redis.hstrlen(keys.run(run), "d"))
        tagged = self.redis.scan_iter(match=f"{keys.PREFIX}:*{{{run}}}*", count=1000)
        return Size(document, sum(self.redis.memory_usage(key, samples=0) or 0 for key in tagged))

    def _redis_cpu(self) -> float:
        info = self.redis.info("cpu")
        return float(info["used_cpu_user"]) + float(info["used_cpu_sys"])


def _check(report: "BatchReport", events: int) -> None:
    """Every event applied: a benchmark whose events are rejected measures nothing."""
    applied = sum(n for outcome, n in report.outcomes.items() if outcome.endswith(":applied"))
    if applied != events or report.failures:
        raise RuntimeError(f"{events} events published, drained: {report.as_dict()}")


def one_round(bench: Bench, api: TestClient, steps: int, tag: str, events: int, batches: int, reads: int) -> Round:
    """A fresh run of `steps` closed steps, then (a), (b) and (c) on it, in that order."""
    run_id = f"long{steps}_{tag}"
    started = time.perf_counter()
    bench.build(run_id, steps)
    built = time.perf_counter() - started
    size = bench.size(run_id)
    live = bench.measure(run_id, [[line] for line in _steps(run_id, "live", events)])
    lines = _steps(run_id, "batch", BATCH * batches)
    batched = bench.measure(run_id, [lines[i : i + BATCH] for i in range(0, len(lines), BATCH)])
    return Round(live, batched, bench.reads(api, run_id, reads), size, built)


def _ratio(rounds: list[dict[int, Round]], steps: int, base: int, figure: Callable[[Round], float]) -> float:
    """The median over the rounds of `steps`' figure over `base`'s in the same round."""
    return statistics.median(figure(r[steps]) / figure(r[base]) for r in rounds)


COLUMNS = {"wall": "wall µs", "worker": "worker CPU µs", "redis": "Redis CPU µs"}  # Cost's fields


READ_COLUMNS = {"page": "page of 20 µs", "step": "one step µs", "run": "whole run µs"}  # Reads' fields


def _table(
    title: str, rounds: list[dict[int, Round]], part: Callable[[Round], NamedTuple], columns: dict[str, str] = COLUMNS
) -> None:
    """Per N: each of `part`'s figures (median) and its ratio to the smallest N's."""
    click.echo(title)
    click.echo(f"{'steps':>7}" + "".join(f" {heading:>14} {'ratio':>7}" for heading in columns.values()))
    base = min(rounds[0])
    for steps in sorted(rounds[0]):
        row = f"{steps:>7,}"
        for name in columns:

            def figure(r: Round, name: str = name) -> float:
                return float(getattr(part(r), name))

            median = statistics.median(figure(r[steps]) for r in rounds)
            row += f" {median:>14,.0f} {_ratio(rounds, steps, base, figure):>6.2f}x"
        click.echo(row)


@click.command()
@click.option(
    "--steps", default="10,1000,5000", show_default=True, help="Closed steps already in the run, comma-separated."
)
@click.option("--events", default=40, show_default=True, help="Events of (a), each published and drained alone.")
@click.option("--batches", default=2, show_default=True, help=f"Drains of {BATCH} events each in (b).")
@click.option("--reads", default=20, show_default=True, help="Requests of each kind in (c).")
@click.option("--repeat", default=3, show_default=True, help="Rounds (every N in turn); medians are reported.")
def main(steps: str, events: int, batches: int, reads: int, repeat: int) -> None:
    sizes = sorted({int(n) for n in steps.split(",")})
    if PIN:
        os.sched_setaffinity(0, {1})  # Redis is on CPU 0
    started = time.monotonic()
    with redis_server() as url:
        os.environ["REDIS_URL"] = url
        os.environ["RUNSTATE_API_TOKENS"] = f"{TOKEN}:{Settings().default_account}"
        runtime = Runtime.connect(Settings())
        bench = Bench(runtime)
        with TestClient(create_app(runtime)) as api:
            one_round(bench, api, sizes[0], "warm-up", 10, 1, 2)  # first-time costs stay out of the base
            rounds = [
                {n: one_round(bench, api, n, str(r), events, batches, reads) for n in sizes} for r in range(repeat)
            ]
    click.echo(
        f"runs of N closed steps; median of {repeat} round(s), every N in turn, ratios against N={sizes[0]:,} "
        f"in the same round; taskset: {'yes' if PIN else 'no'}; {time.monotonic() - started:.0f} s"
    )
    click.echo(f"{'steps':>7} {'document':>12} {'run keys':>12} {'build s':>8}")
    for n in sizes:
        size, built = rounds[0][n].size, statistics.median(r[n].built for r in rounds)
        click.echo(f"{n:>7,} {size.document / 1024:>8,.0f} KiB {size.keys / 1024:>8,.0f} KiB {built:>8.2f}")
    _table(f"(a) live: one event per publish and drain ({events} events)", rounds, lambda r: r.live)
    _table(f"(b) batches: {BATCH} events per publish and drain ({batches} batches)", rounds, lambda r: r.batches)
    _table(f"(c) reads through the HTTP API (median of {reads} each)", rounds, lambda r: r.reads, READ_COLUMNS)


if __name__ == "__main__":
    main()
