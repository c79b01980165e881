"""Issue 7's figures in one run, on one private Redis, every feature on (per-run order,
timers, the webhook outbox, counters, metrics):

    python -m benchmarks.perf [--runs 2000] [--repeat 3] [--stored 100000] [--rate 1000] [--seconds 10]
                              [--inactivity 60]

- end-to-end events/s: the events published first, then drained by `runstate worker --burst`
  (one process, then two started together), timed from the workers' start to their exit,
  process start included;
- RQ's ceiling (one no-op job per event) and the naive per-event design, on the same Redis,
  and runstate's ratio to each;
- publish → applied latency p50/p99 at an offered rate, one live worker;
- Redis memory per finished 10-event run, and what retention leaves of it;
- events/s with 1,000 and with `--stored` runs already stored;
- with `--inactivity S`: one worker's events/s with an inactivity timeout of S seconds on every
  run (`RUNSTATE_DEFAULT_INACTIVITY_TIMEOUT`), in turn with the same burst without.

Beside each burst's events/s, its CPU per event (the workers' from their rusage, Redis's from
INFO cpu): a busy shared machine moves wall time much more than CPU time, so the CPU figures
say whether a difference in events/s is the design's or the machine's.

Redis runs pinned to CPU 0, at a higher priority (nice -10) so that a worker beside it never
makes it wait for a time slice, and one worker on CPU 1 (taskset); a second worker goes on
CPU 0, beside Redis: the machine has two cores. Medians of `--repeat` measurements; figures
that are compared are measured in turn (one worker, two workers, one, two...) so the shared
machine's drift hits both. The stored-runs figures use two Redis servers, one holding 1,000
runs and one holding `--stored`, measured in turn, twice as many rounds.
"""

import resource
import statistics
import tempfile
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import NamedTuple, TypeVar

import click
from redis import Redis

from benchmarks import baselines, latency, memory
from benchmarks.common import redis_server, run_events, runstate, start_runstate, write_events
from worker.store.subscriptions import Subscription, Subscriptions

T = TypeVar("T")


class Burst(NamedTuple):
    rate: float  # events/s, from the workers' start to their exit
    worker_us: float  # CPU per event of the worker processes, start included (user + system)
    redis_us: float  # CPU per event of redis-server meanwhile

    @property
    def cpu_us(self) -> float:
        """CPU per event, the workers' and Redis's together: what a busy shared machine moves least
        (time another tenant takes is wall time, not CPU time of ours)."""
        return self.worker_us + self.redis_us


def burst(
    redis_url: str,
    folder: Path,
    runs: int,
    workers: int,
    *,
    flush: bool = True,
    hooked: bool = False,
    code: Path | None = None,
    inactivity: float | None = None,
) -> Burst:
    """`workers` burst workers started together over `runs` new runs of 10 events, published
    first. `hooked`: a webhook subscription wants every transition, so each commit also writes a
    delivery per transition into the outbox (no delivery process runs meanwhile). `code`: a
    checkout of another version to publish and drain with. `inactivity`: every run has an
    inactivity timeout of that many seconds, so every event moves its clock."""
    redis = Redis.from_url(redis_url)
    if flush:
        redis.flushdb()
    if hooked:
        Subscriptions(redis).save(Subscription(account="default", url="https://hooks.example.com/runstate"))
    global _bursts
    _bursts += 1
    lines = run_events(runs, prefix=f"b{_bursts}")  # new run ids every time, even without a flush
    events = len(lines)
    runstate(["publish", str(write_events(folder / "burst.jsonl", lines))], redis_url, code=code)
    redis_cpu, children = _redis_cpu(redis), resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    env = {} if inactivity is None else {"RUNSTATE_DEFAULT_INACTIVITY_TIMEOUT": f"{inactivity:g}"}
    procs = [start_runstate(["worker", "--burst"], redis_url, cpu=1 - n % 2, code=code, **env) for n in range(workers)]
    if any(proc.wait() != 0 for proc in procs):
        raise RuntimeError("a burst worker failed")
    rate = events / (time.perf_counter() - started)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)  # the workers: the only children reaped meanwhile
    worker_cpu = after.ru_utime + after.ru_stime - children.ru_utime - children.ru_stime
    return Burst(rate, 1e6 * worker_cpu / events, 1e6 * (_redis_cpu(redis) - redis_cpu) / events)


def _redis_cpu(redis: Redis) -> float:
    info = redis.info("cpu")
    return float(info["used_cpu_user"]) + float(info["used_cpu_sys"])


_bursts = 0


def preload(redis_url: str, folder: Path, runs: int) -> None:
    """`runs` finished runs stored, drained by two burst workers."""
    Redis.from_url(redis_url).flushdb()
    for start in range(0, runs, 20_000):
        burst(redis_url, folder, min(20_000, runs - start), 2, flush=False)


def _in_turn(measures: list[Callable[[], T]], repeat: int) -> list[list[T]]:
    """Each measure `repeat` times, one of each in turn; the figures of each measure."""
    rounds = [[measure() for measure in measures] for _ in range(repeat)]
    return [list(column) for column in zip(*rounds, strict=True)]


def _row(name: str, value: str, note: str = "") -> None:
    click.echo(f"{name:52} {value:>18}  {note}")


@click.command()
@click.option("--runs", default=2000, show_default=True, help="Runs of 10 events for the throughput figures.")
@click.option("--repeat", default=3, show_default=True, help="Measurements of each; medians are reported.")
@click.option("--stored", default=100_000, show_default=True, help="Runs already stored for the flatness figure.")
@click.option("--rate", default=1000.0, show_default=True, help="Offered events/s for the latency figure.")
@click.option("--seconds", default=10.0, show_default=True, help="Seconds of offered load for the latency figure.")
@click.option(
    "--against",
    type=click.Path(exists=True, file_okay=False, path_type=Path),
    help="A checkout of another version: only the one-worker burst, this code against that one, in turn.",
)
@click.option(
    "--inactivity", type=float, default=None, help="Also: one worker with this inactivity timeout on every run."
)
def main(
    runs: int, repeat: int, stored: int, rate: float, seconds: float, against: Path | None, inactivity: float | None
) -> None:
    if against is not None:
        compare(against.resolve(), runs, repeat)
        return
    lines = run_events(runs)
    n = len(lines)
    with tempfile.TemporaryDirectory() as name, redis_server() as url, redis_server() as full:
        folder = Path(name)
        # figures compared with each other are measured in turn, so the machine's drift hits all alike
        singles: list[Burst] = []

        def single() -> float:
            singles.append(burst(url, folder, runs, 1))
            return singles[-1].rate

        measures = [
            single,
            lambda: burst(url, folder, runs, 2).rate,
            lambda: burst(url, folder, runs, 1, hooked=True).rate,
            lambda: baselines.rq_noop(url, 2000),
            lambda: baselines.naive(url, lines[:2000]),
        ]
        if inactivity is not None:
            measures.append(lambda: burst(url, folder, runs, 1, inactivity=inactivity).rate)
        ones, twos, hooks, ceilings, naives, *quiets = _in_turn(measures, repeat)
        one, two = statistics.median(ones), statistics.median(twos)
        ceiling, naive = statistics.median(ceilings), statistics.median(naives)
        waits = latency.measure(url, rate, seconds, folder)
        sizes = memory.measure(url)
        preload(url, folder, 1000)
        preload(full, folder, stored)
        smalls, larges = _in_turn(  # cheap rounds, and a small difference to see: twice as many
            [lambda: burst(url, folder, runs, 1, flush=False), lambda: burst(full, folder, runs, 1, flush=False)],
            2 * repeat,
        )
        small, large = statistics.median(b.rate for b in smalls), statistics.median(b.rate for b in larges)
    click.echo(f"{n:,} events ({runs:,} runs x 10), medians of {repeat}; ratios: medians of ratios in turn")
    _row("one worker, end to end", f"{one:,.0f} events/s", f"all: {_all(ones)}")
    _row(
        "  CPU per event, one worker",
        f"{statistics.median(b.cpu_us for b in singles):,.0f} us",
        f"the worker {statistics.median(b.worker_us for b in singles):,.0f} us (its start included), "
        f"Redis {statistics.median(b.redis_us for b in singles):,.1f} us",
    )
    _row(
        "two workers, end to end",
        f"{two:,.0f} events/s",
        f"{_ratio(twos, ones):.2f}x one; all: {_all(twos)}",
    )
    _row(
        "one worker, a webhook delivery per transition too",
        f"{statistics.median(hooks):,.0f} events/s",
        f"{_ratio(hooks, ones):.2f}x without; all: {_all(hooks)}",
    )
    if quiets:
        _row(
            f"one worker, an inactivity timeout ({inactivity:g} s) on every run",
            f"{statistics.median(quiets[0]):,.0f} events/s",
            f"{_ratio(quiets[0], ones):.2f}x without; all: {_all(quiets[0])}",
        )
    _row(
        "RQ no-op job per event (SimpleWorker, JSON)",
        f"{ceiling:,.0f} jobs/s",
        f"one worker: {_ratio(ones, ceilings):.1f}x",
    )
    _row(
        "naive: RQ job + new Machine + HGETALL/HSET",
        f"{naive:,.0f} events/s",
        f"one worker: {_ratio(ones, naives):.1f}x",
    )
    _row(
        f"publish -> applied at {rate:,.0f} events/s offered",
        f"p50 {waits['p50_ms']:.1f} ms",
        f"p99 {waits['p99_ms']:.1f} ms, max {waits['max_ms']:.1f} ms, {waits['events']:,.0f} events, "
        f"{waits['missing']:,.0f} unseen",
    )
    _row("Redis memory per finished 10-event run", f"{sizes['per_run']:,.0f} bytes", _parts(sizes))
    _row(
        f"  after RUNSTATE_RETENTION ({memory.RETENTION} s)",
        f"{sizes['after_retention']:,.0f} bytes",
        f"after twice that (tombstones gone): {sizes['after_tombstones']:,.0f} bytes",
    )
    _row(
        "one worker, 1,000 runs stored",
        f"{small:,.0f} events/s",
        f"CPU per event {statistics.median(b.cpu_us for b in smalls):,.0f} us; all: {_all(b.rate for b in smalls)}",
    )
    _row(
        f"one worker, {stored:,} runs stored",
        f"{large:,.0f} events/s",
        f"{_ratio([b.rate for b in larges], [b.rate for b in smalls]):.2f}x the 1,000 figure; CPU per event "
        f"{statistics.median(b.cpu_us for b in larges):,.0f} us, "
        f"{_ratio([b.cpu_us for b in larges], [b.cpu_us for b in smalls]):.2f}x; all: {_all(b.rate for b in larges)}",
    )


def compare(other: Path, runs: int, repeat: int) -> None:
    """One burst worker of this code against one of `other`'s, in turn, on one Redis."""
    with tempfile.TemporaryDirectory() as name, redis_server() as url:
        folder = Path(name)
        these, those = _in_turn(
            [lambda: burst(url, folder, runs, 1), lambda: burst(url, folder, runs, 1, code=other)], repeat
        )
    click.echo(f"{runs * 10:,} events ({runs:,} runs x 10), medians of {repeat}, measured in turn")
    for label, bursts in (("this code", these), (str(other), those)):
        rates = [b.rate for b in bursts]
        cpu = statistics.median(b.cpu_us for b in bursts)
        _row(
            f"one worker, {label}", f"{statistics.median(rates):,.0f} events/s", f"all: {_all(rates)}; CPU {cpu:.0f} us"
        )
    ratio = _ratio([b.rate for b in these], [b.rate for b in those])
    cpu_ratio = _ratio([b.cpu_us for b in those], [b.cpu_us for b in these])
    _row("this code against the other", f"{ratio:.2f}x events/s", f"{cpu_ratio:.2f}x less CPU per event")


def _ratio(these: list[float], those: list[float]) -> float:
    """The median of the ratios of figures measured in turn: the machine's drift cancels out."""
    return statistics.median(a / b for a, b in zip(these, those, strict=True))


def _all(values: Iterable[float]) -> str:
    return ", ".join(f"{x:,.0f}" for x in values)


def _parts(sizes: dict[str, float]) -> str:
    return ", ".join(f"{k.removeprefix('key: ')} {v:,.0f}" for k, v in sizes.items() if k.startswith("key: "))


if __name__ == "__main__":
    main()
