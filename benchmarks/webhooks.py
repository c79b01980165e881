"""Webhook delivery: deliveries/s to a local receiver, and commit -> first attempt latency at a steady rate.

    python -m benchmarks.webhooks [--deliveries 2000] [--rate 200] [--seconds 10]

A private redis-server (CPU 0), a minimal asyncio HTTP receiver on loopback that answers
200 at once and notes when each request arrived, `runstate webhooks deliver` and
`runstate worker` as real processes (CPU 1).
"""

import asyncio
import os
import statistics
import subprocess
import threading
import time

import click
import orjson

from benchmarks.common import percentile, redis_server, start_runstate
from statemachine.webhooks import delivery_id
from worker.runtime import Runtime
from worker.settings import Settings
from worker.store import keys
from worker.store.subscriptions import Subscription, Subscriptions


class Arrivals:
    def __init__(self) -> None:
        self.at: dict[str, float] = {}  # webhook-id -> wall-clock arrival
        self.lock = threading.Lock()


async def _serve(arrivals: Arrivals, ready: threading.Event, port_box: list[int]) -> None:
    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while True:
            head = await reader.readuntil(b"\r\n\r\n")
            headers = dict(line.split(": ", 1) for line in head.decode().split("\r\n")[1:] if ": " in line)
            lowered = {k.lower(): v for k, v in headers.items()}
            await reader.readexactly(int(lowered.get("content-length", "0")))
            with arrivals.lock:
                arrivals.at.setdefault(lowered["webhook-id"], time.time())
            writer.write(b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n")
            await writer.drain()

    async def guarded(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            await handle(reader, writer)
        except (asyncio.IncompleteReadError, ConnectionError):
            writer.close()

    server = await asyncio.start_server(guarded, "127.0.0.1", 0, backlog=1024)
    port_box.append(server.sockets[0].getsockname()[1])
    ready.set()
    async with server:
        await server.serve_forever()


def start_receiver() -> tuple[Arrivals, int]:
    arrivals, ready, port_box = Arrivals(), threading.Event(), list[int]()
    threading.Thread(target=lambda: asyncio.run(_serve(arrivals, ready, port_box)), daemon=True).start()
    ready.wait(10)
    return arrivals, port_box[0]


def _spawn(args: list[str]) -> subprocess.Popen[bytes]:
    return start_runstate(args, os.environ["REDIS_URL"], RUNSTATE_WEBHOOK_ALLOW_PRIVATE="1")


@click.command()
@click.option("--deliveries", default=2000, show_default=True)
@click.option("--rate", default=200, show_default=True, help="Transitions per second for the latency run.")
@click.option("--seconds", default=10, show_default=True)
def main(deliveries: int, rate: int, seconds: int) -> None:
    arrivals, port = start_receiver()
    with redis_server() as url:
        os.environ["REDIS_URL"] = url
        runtime = Runtime.connect(Settings())
        Subscriptions(runtime.redis).save(Subscription(account="default", url=f"http://127.0.0.1:{port}/hook"))

        # 1. throughput: the outbox already holds every delivery; time the delivery process draining it
        lines = [
            orjson.dumps({"id": "s", "type": "run.started", "run_id": f"t{n}"}).decode() for n in range(deliveries)
        ]
        runtime.publisher.publish_lines(lines)
        runtime.processor.drain([keys.ref("default", f"t{n}") for n in range(deliveries)])
        started = time.perf_counter()
        drained = _spawn(["webhooks", "deliver", "--until-idle"])
        drained.wait(timeout=600)
        throughput = deliveries / (time.perf_counter() - started)
        delivered = len(arrivals.at)

        # 2. latency: transitions committed at a steady rate by a live worker, delivered by a live process
        arrivals.at.clear()
        worker, deliverer = _spawn(["worker"]), _spawn(["webhooks", "deliver"])
        try:
            time.sleep(1.5)
            total = rate * seconds
            begin = time.perf_counter()
            for n in range(total):
                runtime.publisher.publish_lines(
                    [orjson.dumps({"id": "s", "type": "run.started", "run_id": f"l{n}"}).decode()]
                )
                time.sleep(max(0.0, begin + (n + 1) / rate - time.perf_counter()))
            deadline = time.monotonic() + 60
            while len(arrivals.at) < total and time.monotonic() < deadline:
                time.sleep(0.2)
        finally:
            for proc in (worker, deliverer):
                proc.terminate()
                proc.wait(timeout=60)
        latencies = []
        subscription = next(iter(Subscriptions(runtime.redis).all()))
        for n in range(total):
            run = keys.ref("default", f"l{n}")
            history, state = runtime.store.history(run), runtime.store.get(run)
            if not history or state is None:
                continue
            first = history[0]
            sent = arrivals.at.get(delivery_id(subscription.id, first, state.run.created_at))
            if sent is not None:
                latencies.append(sent - first.applied_at / 1000)
    click.echo(f"throughput: {delivered}/{deliveries} delivered, {throughput:,.0f} deliveries/s (one process)")
    if latencies:
        click.echo(
            f"commit -> first attempt at {rate}/s over {seconds} s: {len(latencies)}/{total} measured, "
            f"p50 {1000 * statistics.median(latencies):.0f} ms, p99 {1000 * percentile(latencies, 0.99):.0f} ms, "
            f"max {1000 * max(latencies):.0f} ms"
        )


if __name__ == "__main__":
    main()
