"""Redis restarted, killed or full under running workers and a webhook sender: every process
stays up, logs each outage once, and resumes by itself; every event is applied exactly once."""

import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import orjson
import pytest

from tests.integration.system.test_faults import _comparable, _expected, _run_script
from tests.support.processes import cli_env, start_worker, stop, wait_until
from tests.support.redis_servers import RedisServer
from worker import reads
from worker.runtime import Runtime
from worker.settings import Settings
from worker.store import keys
from worker.store.keys import ref


@pytest.fixture
def server(tmp_path: Path) -> Iterator[RedisServer]:
    started = RedisServer(tmp_path / "redis").start()
    yield started
    started.stop()


@pytest.fixture
def own_runtime(server: RedisServer, monkeypatch: pytest.MonkeyPatch) -> Iterator[Runtime]:
    monkeypatch.setenv("REDIS_URL", server.url)
    made = Runtime.connect(Settings())
    yield made
    made.redis.close()


def _start_sender(redis_url: str) -> "subprocess.Popen[bytes]":
    return subprocess.Popen(
        [sys.executable, "-m", "worker", "webhooks", "deliver"],
        env=cli_env(redis_url),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )


def _restart_after(fault: Callable[[], None], server: RedisServer) -> None:
    fault()
    time.sleep(1.5)  # an outage the processes must notice: each loop polls Redis at least every 0.5 s
    server.start()


def _fill_then_free(server: RedisServer) -> None:
    """maxmemory below what is used (noeviction): every write is refused with OOM, then allowed again."""
    with server.client() as client:
        used = int(client.info("memory")["used_memory"])
        client.config_set("maxmemory", max(1, used // 2))
        time.sleep(1.5)
        client.config_set("maxmemory", 0)


def _outage_lines(log: str) -> list[dict[str, object]]:
    lines = [orjson.loads(line) for line in log.splitlines() if line.startswith("{")]
    return [line for line in lines if str(line.get("event", "")).startswith("redis.")]


def test_workers_and_sender_ride_out_restarts_kills_and_a_full_redis(server: RedisServer, own_runtime: Runtime) -> None:
    runtime = own_runtime
    url = server.url
    processes = [start_worker(url, RUNSTATE_RECOVER_AFTER="1") for _ in range(2)]
    processes.append(_start_sender(url))
    wait_until(lambda: runtime.redis.scard("rq:workers") == 2)
    faults = [
        lambda: _restart_after(server.shutdown, server),
        lambda: _restart_after(server.kill, server),
        lambda: _fill_then_free(server),
    ]
    scripts: dict[str, list[dict[str, object]]] = {}
    for round_, fault in enumerate(faults):
        batch = {f"r_out_{round_}_{n}": _run_script(f"r_out_{round_}_{n}", 12) for n in range(20)}
        scripts |= batch
        lines = [orjson.dumps(e).decode() for events in batch.values() for e in events]
        assert runtime.publisher.publish_lines(lines).errors == []
        first = next(iter(batch))
        wait_until(lambda first=first: runtime.store.get(ref("default", first)) is not None, timeout=30, every=0.01)
        fault()  # while the workers are inside their jobs
    try:
        wait_until(lambda: all(runtime.redis.llen(keys.inbox(ref("default", r))) == 0 for r in scripts), timeout=90)
        running = [p.poll() is None for p in processes]
    finally:
        logs = [stop(p) for p in processes]
    assert running == [True, True, True], [log[-3000:] for log, up in zip(logs, running, strict=True) if not up]
    assert [p.returncode for p in processes] == [0, 0, 0]
    total = sum(len(events) for events in scripts.values())
    assert reads.stats(runtime.store)["applied"] == total
    for run_id, events in scripts.items():
        state = runtime.store.get(ref("default", run_id))
        assert state is not None, run_id
        assert _comparable(state) == _comparable(_expected(events)), run_id
    for log in logs:
        assert "unhandled exception" not in log
        outages = _outage_lines(log)
        # each loop logs an outage when it starts and when it ends, never per attempt: at most
        # one of each per fault and loop (a worker has two loops: RQ's and the sweeper's)
        down = [o for o in outages if o["event"] == "redis.unavailable"]
        assert len(down) <= 2 * len(faults), outages
        assert all(o["reason"] for o in down)
        for loop in {str(o["loop"]) for o in outages}:
            # down, back, down, back...: a loop stopped while still waiting to retry after the
            # last fault (its backoff reaches 2 s) ends on a "down" it had no chance to close
            events = [o["event"] for o in outages if o["loop"] == loop]
            assert events[: len(events) // 2 * 2] == ["redis.unavailable", "redis.available"] * (len(events) // 2)
    assert any(_outage_lines(log) for log in logs[:2])


def test_sigterm_stops_an_idle_worker_within_two_seconds(redis_url: str, runtime: Runtime) -> None:
    worker = start_worker(redis_url)
    wait_until(lambda: runtime.redis.scard("rq:workers") == 1)
    time.sleep(1)  # idle: inside RQ's blocking dequeue, the sweeper between sweeps
    started = time.monotonic()
    worker.send_signal(signal.SIGTERM)
    worker.communicate(timeout=30)
    assert (worker.returncode, time.monotonic() - started < 2) == (0, True)


def test_sigterm_stops_a_worker_between_jobs_within_two_seconds(redis_url: str, runtime: Runtime) -> None:
    worker = start_worker(redis_url)
    wait_until(lambda: runtime.redis.scard("rq:workers") == 1)
    for n in range(5):  # a job each, one after the other
        events = [orjson.dumps(e).decode() for e in _run_script(f"r_between_{n}", 3)]
        assert runtime.publisher.publish_lines(events).errors == []
        wait_until(lambda n=n: runtime.redis.llen(keys.inbox(ref("default", f"r_between_{n}"))) == 0, timeout=30)
    started = time.monotonic()
    worker.send_signal(signal.SIGTERM)
    worker.communicate(timeout=30)
    assert (worker.returncode, time.monotonic() - started < 2) == (0, True)
