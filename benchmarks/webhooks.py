"""Webhook delivery against the limit of the machine: the sender beside a bare aiohttp loop.

    python -m benchmarks.webhooks [--deliveries 10000] [--rate 1000] [--seconds 10]

A private redis-server and `benchmarks.receiver` (a raw asyncio protocol answering 200 at
once, never the bottleneck) share CPU 0; what is measured runs on CPU 1. In turn:

(a) a bare aiohttp loop signing each payload with standardwebhooks and posting it, 100 in flight
    (the issue's yardstick, on asyncio's loop), and the same loop on uvloop, the sender's loop;
(b) one `runstate webhooks deliver` process draining as many outbox entries, for 10 subscriptions
    on the same receiver (so 100 are in flight, as in (a)): written first and held back, the
    process started, then released, each due at its commit time (the backlog a stopped sender
    would find), so its start-up is not counted; deliveries/s
    and CPU per delivery (from /proc) for both, and the ratio;
(c) commit -> first attempt p50/p99 at `rate` transitions/s offered by a live `runstate worker`
    (on CPU 0, where a deployment would give it a core of its own) and one delivery process;
(d) the same with a second subscription whose endpoint never answers: the healthy one's p99.
"""

import os
import statistics
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager

import click
import orjson

from benchmarks.clients import ON_UVLOOP, measure, receiver
from benchmarks.common import percentile, redis_server, start_runstate
from statemachine.webhooks import delivery_id
from worker.runtime import Runtime
from worker.settings import Settings
from worker.store import keys
from worker.store.subscriptions import Subscription, Subscriptions

HOLD_MS = 86_400_000  # outbox entries pushed this far ahead wait until (b) releases them
SUBSCRIPTIONS = 10  # in (b): at the default 10 in flight each, 100 in flight in all, as in the bare loop


class Arrivals:
    """What the receiver saw: webhook-id -> first arrival (wall clock), fetched as it grows."""

    def __init__(self, port: int) -> None:
        self.url, self.at = f"http://127.0.0.1:{port}/arrivals", dict[str, float]()

    def fetch(self) -> int:
        with urllib.request.urlopen(self.url, timeout=10) as answer:  # noqa: S310 (loopback, ours)
            for webhook_id, at in orjson.loads(answer.read()).items():
                self.at.setdefault(webhook_id, at)
        return len(self.at)

    def wait_for(self, count: int, timeout: float) -> float:
        deadline = time.monotonic() + timeout
        while self.fetch() < count and time.monotonic() < deadline:
            time.sleep(0.02)
        return max(self.at.values(), default=0.0)


def cpu_seconds(pid: int) -> float:
    fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()  # noqa: SIM115
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@contextmanager
def running(*argvs: list[str], cpus: tuple[int, ...] = (1,)) -> Iterator[list[subprocess.Popen[bytes]]]:
    """`runstate` processes, the n-th on CPU cpus[n]."""
    url, private = os.environ["REDIS_URL"], {"RUNSTATE_WEBHOOK_ALLOW_PRIVATE": "1"}
    procs = [start_runstate(argv, url, cpu, **private) for argv, cpu in zip(argvs, cpus, strict=True)]
    try:
        yield procs
    finally:
        for proc in procs:
            proc.kill()  # a hanging endpoint's attempts would hold a graceful stop for their timeout
            proc.wait(timeout=30)


def _events(prefix: str, first: int, count: int) -> list[str]:
    return [
        orjson.dumps({"id": "s", "type": "run.started", "run_id": f"{prefix}{n}"}).decode()
        for n in range(first, first + count)
    ]


def sender_drain(runtime: Runtime, arrivals: Arrivals, port: int, count: int) -> dict[str, float]:
    """(b): `count` outbox entries for SUBSCRIPTIONS subscriptions (so as many may be in flight as
    in the bare loop) held back, a delivery process started, then the entries released."""
    subscriptions = Subscriptions(runtime.redis)
    made = [Subscription(account="default", url=f"http://127.0.0.1:{port}/hook/{n}") for n in range(SUBSCRIPTIONS)]
    for subscription in made:
        subscriptions.save(subscription)
    runs, tag = count // SUBSCRIPTIONS, f"b{time.monotonic_ns()}_"  # new runs at every call
    for start in range(0, runs, 1000):
        runtime.publisher.publish_lines(_events(tag, start, min(1000, runs - start)))
        runtime.processor.drain([keys.ref("default", f"{tag}{n}") for n in range(start, min(start + 1000, runs))])
    ids = [subscription.id for subscription in made]
    due = sum(runtime.redis.zcard(keys.webhook_timers(subscription_id)) for subscription_id in ids)
    runtime.redis.zadd(keys.WEBHOOK_READY, dict.fromkeys(ids, runtime.store.now_ms() + HOLD_MS))  # held back
    arrivals.fetch()
    arrivals.at.clear()
    with running(["webhooks", "deliver"]) as (proc,):
        time.sleep(3)  # imported and polling
        cpu, started = cpu_seconds(proc.pid), time.time()
        # released: each delivery due when it was committed, as a stopped sender would find them
        runtime.redis.zadd(keys.WEBHOOK_READY, dict.fromkeys(ids, 0))
        last = arrivals.wait_for(due, 300)
        used = cpu_seconds(proc.pid) - cpu
    for subscription in made:
        subscriptions.remove(subscription.id)
    sent = len(arrivals.at)
    return {"per_second": sent / (last - started), "cpu_us": 1e6 * used / max(1, sent), "sent": sent}


def latencies(runtime: Runtime, arrivals: Arrivals, rate: int, seconds: int, hanging: bool, tag: str) -> list[float]:
    """(c), (d): commit -> first attempt at the healthy subscription, for `rate` transitions/s."""
    healthy = next(s for s in Subscriptions(runtime.redis).all() if s.url.endswith("/hook"))
    if hanging:
        Subscriptions(runtime.redis).save(Subscription(account="default", url=healthy.url.replace("/hook", "/hang")))
    arrivals.fetch()
    arrivals.at.clear()
    total, tick = rate * seconds, 0.01
    with running(["worker"], ["webhooks", "deliver"], cpus=(0, 1)):  # the sender's core its own
        time.sleep(3)
        begin = time.perf_counter()
        for batch in range(int(seconds / tick)):
            each = total * tick / seconds
            runtime.publisher.publish_lines(
                _events(tag, int(batch * each), int((batch + 1) * each) - int(batch * each))
            )
            time.sleep(max(0.0, begin + (batch + 1) * tick - time.perf_counter()))
        arrivals.wait_for(total, 60)
    found = []
    for n in range(total):
        run = keys.ref("default", f"{tag}{n}")
        history, state = runtime.store.history(run), runtime.store.get(run)
        if history and state is not None:
            sent = arrivals.at.get(delivery_id(healthy.id, history[0], state.run.created_at))
            if sent is not None:
                found.append(sent - history[0].applied_at / 1000)
    return found


def _line(name: str, values: list[float], total: int) -> str:
    return (
        f"{name}: {len(values)}/{total} measured, p50 {1000 * statistics.median(values):.0f} ms, "
        f"p99 {1000 * percentile(values, 0.99):.0f} ms, max {1000 * max(values):.0f} ms"
    )


@click.command()
@click.option("--deliveries", default=10_000, show_default=True, help="For (a) and (b).")
@click.option("--rate", default=1000, show_default=True, help="Transitions per second for (c) and (d).")
@click.option("--seconds", default=10, show_default=True, help="How long (c) and (d) offer them.")
def main(deliveries: int, rate: int, seconds: int) -> None:
    click.echo(f"load average before: {os.getloadavg()[0]:.2f}")
    with receiver() as port, redis_server() as url:
        os.environ["REDIS_URL"] = url
        runtime, arrivals = Runtime.connect(Settings()), Arrivals(port)
        bare = measure("aiohttp", f"http://127.0.0.1:{port}/hook", deliveries, 100)
        click.echo(f"(a) bare aiohttp loop: {bare['per_second']:,.0f} deliveries/s, {bare['cpu_us']:.0f} µs CPU each")
        fast = measure(ON_UVLOOP, f"http://127.0.0.1:{port}/hook", deliveries, 100)
        click.echo(
            f"    the same on uvloop (the sender's loop): {fast['per_second']:,.0f} deliveries/s, "
            f"{fast['cpu_us']:.0f} µs CPU each"
        )
        ours = sender_drain(runtime, arrivals, port, deliveries)
        Subscriptions(runtime.redis).save(Subscription(account="default", url=f"http://127.0.0.1:{port}/hook"))
        click.echo(
            f"(b) runstate webhooks deliver ({ours['sent']:.0f} to {SUBSCRIPTIONS} subscriptions): "
            f"{ours['per_second']:,.0f} deliveries/s, {ours['cpu_us']:.0f} µs CPU "
            f"each: {ours['per_second'] / bare['per_second']:.2f}x the bare loop (target >= 0.6x), "
            f"{ours['per_second'] / fast['per_second']:.2f}x it on uvloop"
        )
        alone = latencies(runtime, arrivals, rate, seconds, hanging=False, tag="c")
        click.echo(_line(f"(c) commit -> first attempt at {rate}/s (target p99 <= 250 ms)", alone, rate * seconds))
        beside = latencies(runtime, arrivals, rate, seconds, hanging=True, tag="d")
        click.echo(_line("(d) the same beside a hanging subscription", beside, rate * seconds))
        ratio = percentile(beside, 0.99) / percentile(alone, 0.99)
        click.echo(f"    healthy p99 beside a hanging subscription: {ratio:.2f}x without (target <= 2x)")
    click.echo(f"load average after: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
