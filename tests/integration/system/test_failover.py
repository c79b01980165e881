"""A Sentinel failover under load (issue 17): a primary, a replica and three sentinels started
here; two workers, a webhook sender and a publisher on the `redis+sentinel://` URL; the primary
SIGKILLed mid-way. With RUNSTATE_REPLICA_ACKS=1 every acknowledged event is applied exactly
once, deadlines set before the failover fire after it, and every process keeps running."""

import contextlib
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest
from redis import Redis
from redis.exceptions import RedisError

from tests.integration.system.test_faults import _comparable, _expected, _run_script
from tests.support.processes import cli_env, start_worker, stop, wait_until
from tests.support.publishing import refs
from tests.support.redis_servers import SentinelGroup, sentinel_group
from worker import reads
from worker.runtime import Runtime
from worker.settings import Settings
from worker.store import keys
from worker.store.durability import NotReplicated
from worker.store.keys import ref
from worker.store.runs import Store

ACKS = {"RUNSTATE_REPLICA_ACKS": "1", "RUNSTATE_RECOVER_AFTER": "1"}
DEADLINE_SECONDS = 8  # the deadline runs' timeout: due a few seconds after the kill


class LoadPublisher(threading.Thread):
    """Publishes one run's events a batch at a time, retrying a batch (same ids) until it is acknowledged."""

    def __init__(self, runtime: Runtime, batches: list[list[str]]) -> None:
        super().__init__(daemon=True)
        self.runtime, self.batches = runtime, batches
        self.acknowledged = 0
        self.retries = 0

    def run(self) -> None:
        for batch in self.batches:
            while True:
                try:
                    assert self.runtime.publisher.publish_lines(batch).errors == []
                    break
                except (NotReplicated, RedisError):
                    self.retries += 1
                    time.sleep(0.05)
            self.acknowledged += 1
            time.sleep(0.03)  # a steady load that spans the failover


def _applied(port: int) -> int:
    with Redis(port=port, socket_timeout=1) as client:
        return int(reads.stats(Store(client, 60))["applied"])


def _role(port: int) -> str:
    with contextlib.suppress(RedisError), Redis(port=port, socket_timeout=1) as client:
        return str(client.info("replication")["role"])
    return "down"


def _quietly(predicate: "object") -> bool:
    """A condition read through the sentinel URL, false while a failover is under way."""
    try:
        return bool(predicate())  # type: ignore[operator]
    except RedisError:
        return False


@pytest.fixture
def group(tmp_path: Path) -> Iterator[SentinelGroup]:
    with sentinel_group(tmp_path) as started:
        yield started


@pytest.fixture
def sentinel_runtime(group: SentinelGroup, monkeypatch: pytest.MonkeyPatch) -> Iterator[Runtime]:
    monkeypatch.setenv("REDIS_URL", group.url)
    monkeypatch.setenv("RUNSTATE_REPLICA_ACKS", "1")
    made = Runtime.connect(Settings())
    yield made
    made.redis.close()


def _start_sender(redis_url: str) -> "subprocess.Popen[bytes]":
    command = [sys.executable, "-m", "worker", "webhooks", "deliver"]
    return subprocess.Popen(command, env=cli_env(redis_url), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def test_a_failover_under_load_loses_no_acknowledged_event(group: SentinelGroup, sentinel_runtime: Runtime) -> None:
    runtime = sentinel_runtime
    processes = [start_worker(group.url, **ACKS) for _ in range(2)]
    processes.append(_start_sender(group.url))
    wait_until(lambda: runtime.redis.scard("rq:workers") == 2)
    deadlines = [f"r_deadline_{n}" for n in range(5)]
    timeout = {"timeout_seconds": DEADLINE_SECONDS}
    started = [{"id": f"{r}_s", "type": "run.started", "run_id": r, "data": timeout} for r in deadlines]
    assert runtime.publisher.publish_lines([orjson.dumps(e).decode() for e in started]).errors == []
    due_after = time.time() + DEADLINE_SECONDS - 1
    scripts = {f"r_fo_{n}": _run_script(f"r_fo_{n}", 8) for n in range(80)}
    load = LoadPublisher(runtime, [[orjson.dumps(e).decode() for e in events] for events in scripts.values()])
    load.start()
    try:
        wait_until(lambda: load.acknowledged >= 20, timeout=30, every=0.01)
        old, new = group.primary.port, group.replica.port
        group.primary.kill()
        killed = time.monotonic()
        assert time.time() < due_after  # the deadlines were set before the failover and fall due after it
        wait_until(lambda: _role(new) == "master", timeout=30, every=0.01)
        at_promotion = _applied(new)
        wait_until(lambda: _applied(new) > at_promotion, timeout=30, every=0.01)
        recovery = time.monotonic() - killed
        group.primary.start()  # the old primary comes back: the sentinels make it the new one's replica,
        # which RUNSTATE_REPLICA_ACKS=1 needs before a publish is acknowledged again
        load.join(timeout=60)
        assert not load.is_alive()
        assert group.primary_port() == new != old
        inboxes = [keys.inbox(run) for run in refs(*scripts)]
        wait_until(lambda: _quietly(lambda: all(runtime.redis.llen(inbox) == 0 for inbox in inboxes)))
        ending = refs(*deadlines)
        wait_until(lambda: _quietly(lambda: all(reads.run(runtime.store, r)["status"] == "timeout" for r in ending)))
        assert [p.poll() for p in processes] == [None, None, None]  # every process rode the failover out
    finally:
        logs = [stop(p) for p in processes]
    assert [p.returncode for p in processes] == [0, 0, 0], logs
    total = sum(len(events) for events in scripts.values()) + len(deadlines)
    assert reads.stats(runtime.store)["applied"] == total  # exactly once: none lost, none twice
    for run_id, events in scripts.items():
        state = runtime.store.get(ref("default", run_id))
        assert state is not None, run_id
        assert _comparable(state) == _comparable(_expected(events)), run_id
        ids = [t.event_id for t in runtime.store.history(ref("default", run_id)) if t.origin == "event"]
        assert len(ids) == len(set(ids)), run_id
    print(
        f"\nfailover: kill -> first event applied on the new primary {recovery:.2f} s; {load.retries} publish retries"
    )
