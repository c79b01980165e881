"""Only runstate's own functions ever run: forged jobs are refused, recorded, and the worker goes on."""

from pathlib import Path

import orjson
from rq import Queue
from rq.serializers import DefaultSerializer, JSONSerializer

from tests.support.processes import runstate
from tests.support.receiver import receiver
from worker.runtime import Runtime
from worker.store.keys import ref


def test_forged_job_calling_os_system_creates_no_file(redis_url: str, runtime: Runtime, tmp_path: Path) -> None:
    canary = tmp_path / "canary"
    forged = Queue("runstate", connection=runtime.redis, serializer=JSONSerializer)
    forged.enqueue("os.system", f"touch {canary}")
    pickled = Queue("runstate", connection=runtime.redis, serializer=DefaultSerializer)
    pickled.enqueue("os.system", f"touch {canary}")
    good = b'{"id": "e1", "type": "run.started", "run_id": "r_after_poison"}\n'
    assert runstate(["publish", "-"], redis_url, stdin=good).returncode == 0

    worked = runstate(["worker", "--burst"], redis_url)

    assert worked.returncode == 0, worked.stderr
    assert not canary.exists()
    state = runtime.store.get(ref("default", "r_after_poison"))
    assert state is not None
    assert state.run.status == "running"
    records = list(runtime.store.rejected())
    assert [r["reason"] for r in records] == ["poisoned_job", "poisoned_job"]
    assert "'os.system' is not runstate's own" in records[0]["detail"]
    assert "not JSON" in records[1]["detail"]
    assert runtime.store.stats()["job.poisoned"] == 2
    assert orjson.loads(runstate(["stats"], redis_url).stdout)["poisoned_jobs"] == 2


def test_garbage_in_the_queue_is_refused_and_the_worker_goes_on(redis_url: str, runtime: Runtime) -> None:
    redis = runtime.redis
    redis.rpush("rq:queue:runstate", "no-such-job", "\x00\xff garbage")
    redis.hset("rq:job:broken", mapping={"data": b"\x80\x04garbage", "status": "queued", "origin": "runstate"})
    redis.rpush("rq:queue:runstate", "broken")
    wrong_args = Queue("runstate", connection=redis, serializer=JSONSerializer)
    wrong_args.enqueue("worker.drain.jobs.drain_ready", {"not": "nothing"})
    wrong_args.enqueue("worker.drain.jobs.drain_ready", ["run_1"])
    good = b'{"id": "e1", "type": "run.started", "run_id": "r_after_garbage"}\n'
    assert runstate(["publish", "-"], redis_url, stdin=good).returncode == 0

    worked = runstate(["worker", "--burst"], redis_url)

    assert worked.returncode == 0, worked.stderr
    state = runtime.store.get(ref("default", "r_after_garbage"))
    assert state is not None
    records = list(runtime.store.rejected())
    assert [r["reason"] for r in records] == ["poisoned_job"] * 4
    details = [r["detail"] for r in records]
    assert "cannot be read: ValueError" in details[0]
    assert "its payload is not JSON" in details[1]
    assert ["a wake-up job takes no arguments" in d for d in details[2:]] == [True, True]
    # the unreadable id is gone from RQ's intermediate list (a missing job RQ skips, and cleans up itself)
    assert "\x00\xff garbage".encode() not in runtime.redis.lrange("rq:queue:runstate:intermediate", 0, -1)


def test_a_forged_job_gets_no_rq_webhook_and_no_retries(redis_url: str, runtime: Runtime) -> None:
    with receiver() as hooks:
        job = Queue("runstate", connection=runtime.redis, serializer=JSONSerializer).enqueue("os.system", "true")
        runtime.redis.hset(
            f"rq:job:{job.id}",
            mapping={
                "webhooks": orjson.dumps([{"url": hooks.url("/admin"), "headers": {"authorization": "x"}}]),
                "retries_left": 50,
            },
        )
        assert runstate(["worker", "--burst"], redis_url).returncode == 0
        assert hooks.received == []
    assert [r["reason"] for r in runtime.store.rejected()] == ["poisoned_job"]
