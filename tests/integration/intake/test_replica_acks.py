"""RUNSTATE_REPLICA_ACKS against a server with no replica: every way to publish says clearly that
the events are not yet safe from a failover (the Sentinel test shows the other side)."""

import time

import orjson
import pytest

from tests.support.apikit import A, api_client
from tests.support.processes import runstate
from worker.runtime import Runtime
from worker.settings import Settings
from worker.store.durability import NotReplicated

EVENT = {"id": "e1", "type": "run.started", "run_id": "r_acks"}


def test_python_publish_raises_when_no_replica_confirms_in_time(runtime: Runtime) -> None:
    settings = Settings(replica_acks=1, replica_ack_timeout=0.2)
    publisher = Runtime(settings, runtime.redis).publisher
    started = time.monotonic()
    with pytest.raises(NotReplicated, match="only 0 of the 1 replicas") as raised:
        publisher.publish_lines([orjson.dumps(EVENT).decode()])
    assert 0.2 <= time.monotonic() - started < 2
    assert (raised.value.wanted, raised.value.confirmed) == (1, 0)
    assert runtime.redis.llen("runstate:inbox:{default/r_acks}") == 1  # stored on the primary all the same


def test_cli_publish_says_so_in_one_line_and_exits_1(redis_url: str) -> None:
    done = runstate(
        ["publish", "-"],
        redis_url,
        stdin=orjson.dumps(EVENT) + b"\n",
        RUNSTATE_REPLICA_ACKS="1",
        RUNSTATE_REPLICA_ACK_TIMEOUT="0.2",
    )
    lines = done.stderr.decode().strip().splitlines()
    assert (done.returncode, len(lines)) == (1, 1), lines
    assert lines[0].startswith("runstate: -: only 0 of the 1 replicas RUNSTATE_REPLICA_ACKS asks for confirmed")
    assert "publish them again (event ids dedupe)" in lines[0]


def test_http_publish_answers_503_with_the_reason(runtime: Runtime, monkeypatch: pytest.MonkeyPatch) -> None:
    with api_client(runtime, monkeypatch, RUNSTATE_REPLICA_ACKS="1", RUNSTATE_REPLICA_ACK_TIMEOUT="0.2") as api:
        answer = api.post("/v1/events", json=[EVENT], headers=A)
    assert (answer.status_code, answer.headers["retry-after"]) == (503, "1")
    error = answer.json()["error"]
    assert error["code"] == "SERVICE_UNAVAILABLE"
    assert error["message"].startswith("only 0 of the 1 replicas")


def test_no_replica_acks_asked_means_no_wait(runtime: Runtime) -> None:
    assert runtime.settings.replica_acks == 0
    assert runtime.publisher.publish_lines([orjson.dumps(EVENT).decode()]).accepted == 1
