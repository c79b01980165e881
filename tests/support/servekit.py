"""A real `runstate serve` and a real `runstate worker`, each in its own process, on the test
redis-server: what producers' clients and OpenTelemetry exporters talk to in these tests."""

import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import httpx

from tests.support.loopback import free_port
from tests.support.processes import cli_env, start_worker, stop, wait_until

TOKENS = "tok_a:acct_a,tok_b:acct_b"


@dataclass(frozen=True)
class Served:
    url: str  # http://127.0.0.1:PORT
    token: str = "tok_a"  # account acct_a
    log: list[str] = field(default_factory=list)  # the server's log lines, once the block has ended


def _healthy(url: str) -> bool:
    try:
        return httpx.get(f"{url}/healthz", timeout=1).status_code == 200
    except httpx.TransportError:
        return False


@contextmanager
def serving(redis_url: str, *, workers: int = 1, **extra: str) -> Iterator[Served]:
    """`runstate serve` on a free port and `workers` workers, stopped (and their logs checked
    for crashes) when the block ends."""
    port = free_port()
    env = cli_env(redis_url, RUNSTATE_API_TOKENS=TOKENS, **extra)
    server = subprocess.Popen(
        [sys.executable, "-m", "worker", "serve", "--host", "127.0.0.1", "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    running = [start_worker(redis_url, **extra) for _ in range(workers)]
    url = f"http://127.0.0.1:{port}"
    served = Served(url)
    try:
        wait_until(lambda: server.poll() is not None or _healthy(url), timeout=60)
        assert server.poll() is None, stop(server)
        yield served
    finally:
        logs = [stop(process) for process in [server, *running]]
        served.log.extend(logs[0].splitlines())
    crashed = [log for log in logs if "Traceback" in log]
    assert not crashed, crashed[0][-3000:]
