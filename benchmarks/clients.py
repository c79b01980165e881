"""Which HTTP client the sender should use: bare signed-POST loops, aiohttp against httpx.

    python -m benchmarks.clients [--count 5000] [--in-flight 100]

Each loop runs in its own process on CPU 1 and sends `count` POSTs, each signed with
`standardwebhooks`, `in-flight` at once, over one pooled client, to `benchmarks.receiver` on
CPU 0. It prints deliveries/s and the loop process's CPU per delivery. `bare_aiohttp` is also
the baseline `benchmarks.webhooks` measures the sender against.
"""

import asyncio
import contextlib
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

import click
import orjson
from standardwebhooks.webhooks import Webhook

from benchmarks.common import pinned

SECRET = "whsec_" + "MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
PAYLOAD = orjson.dumps({"type": "run.status_changed", "timestamp": "2025-01-01T00:00:00Z", "data": {"n": 1}}).decode()


@contextlib.contextmanager
def receiver() -> Iterator[int]:
    """`benchmarks.receiver` in its own process on CPU 0; yields its port."""
    with tempfile.TemporaryDirectory() as folder:
        port_file = Path(folder) / "port"
        proc = subprocess.Popen(pinned(0, [sys.executable, "-m", "benchmarks.receiver", str(port_file)]))
        try:
            for _ in range(200):
                if port_file.exists() and port_file.read_text():
                    break
                time.sleep(0.05)
            yield int(port_file.read_text())
        finally:
            proc.terminate()
            proc.wait(timeout=10)


def _headers(n: int) -> dict[str, str]:
    msg_id, now = f"msg_bench_{n}", datetime.now(UTC)
    return {
        "content-type": "application/json",
        "webhook-id": msg_id,
        "webhook-timestamp": str(int(now.timestamp())),
        "webhook-signature": Webhook(SECRET).sign(msg_id, now, PAYLOAD),
    }


async def _bounded(count: int, in_flight: int, post: Callable[[int], Awaitable[int]]) -> None:
    slots = asyncio.Semaphore(in_flight)

    async def one(n: int) -> None:
        async with slots:
            status = await post(n)
            assert status == 200, status

    await asyncio.gather(*(one(n) for n in range(count)))


async def bare_aiohttp(url: str, count: int, in_flight: int) -> None:
    import aiohttp

    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=in_flight)) as session:

        async def post(n: int) -> int:
            async with session.post(url, data=PAYLOAD.encode(), headers=_headers(n)) as response:
                return response.status

        await _bounded(count, in_flight, post)


async def bare_httpx(url: str, count: int, in_flight: int) -> None:
    import httpx

    limits = httpx.Limits(max_connections=in_flight, max_keepalive_connections=in_flight)
    async with httpx.AsyncClient(limits=limits, trust_env=False) as client:

        async def post(n: int) -> int:
            return (await client.post(url, content=PAYLOAD.encode(), headers=_headers(n))).status_code

        await _bounded(count, in_flight, post)


LOOPS = {"aiohttp": bare_aiohttp, "httpx": bare_httpx}
ON_UVLOOP = "aiohttp-uvloop"  # the bare aiohttp loop on uvloop, the sender's event loop


def _run(client: str, url: str, count: int, in_flight: int) -> None:
    if client == ON_UVLOOP:
        import uvloop

        uvloop.run(bare_aiohttp(url, count, in_flight))
    else:
        asyncio.run(LOOPS[client](url, count, in_flight))


def measure(client: str, url: str, count: int, in_flight: int) -> dict[str, float]:
    """Run one loop in its own process on CPU 1: deliveries/s and CPU µs per delivery."""
    argv = [sys.executable, "-m", "benchmarks.clients", "--one", client, "--url", url, "--count", str(count)]
    done = subprocess.run(pinned(1, [*argv, "--in-flight", str(in_flight)]), capture_output=True, check=True)
    return orjson.loads(done.stdout.splitlines()[-1])  # type: ignore[no-any-return]


def _run_one(client: str, url: str, count: int, in_flight: int) -> None:
    started, cpu = time.perf_counter(), time.process_time()
    _run(client, url, count, in_flight)
    wall, used = time.perf_counter() - started, time.process_time() - cpu
    click.echo(orjson.dumps({"per_second": count / wall, "cpu_us": 1e6 * used / count}).decode())


@click.command()
@click.option("--count", default=5000, show_default=True)
@click.option("--in-flight", default=100, show_default=True)
@click.option("--one", type=click.Choice([*sorted(LOOPS), ON_UVLOOP]), help="Run only this loop here (for the driver).")
@click.option("--url", help="With --one: where to post.")
def main(count: int, in_flight: int, one: str | None, url: str | None) -> None:
    if one is not None:
        _run_one(one, str(url), count, in_flight)
        return
    with receiver() as port:
        for client in ("aiohttp", "httpx", "aiohttp", "httpx"):
            got = measure(client, f"http://127.0.0.1:{port}/hook", count, in_flight)
            click.echo(f"{client:8} {got['per_second']:8,.0f} deliveries/s  {got['cpu_us']:6.0f} µs CPU each")


if __name__ == "__main__":
    main()
