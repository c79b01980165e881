"""Ready runs and wake-up jobs: one RQ job per worker turn, never per event, and nothing lost
when a job is; the queue depth and the runs index stay exact."""

import time

import orjson
import pytest

from tests.integration.conftest import start_worker, stop, wait_until
from worker import keys, ready
from worker.queueing import make_queue
from worker.runtime import Runtime
from worker.settings import Settings


def _started(run_id: str) -> str:
    return orjson.dumps({"id": f"{run_id}_s", "type": "run.started", "run_id": run_id}).decode()


def _queued_jobs(runtime: Runtime) -> int:
    return len(make_queue(runtime.redis, runtime.settings.queue_name))


def test_fifty_publishes_while_no_worker_runs_enqueue_one_wake_up_job(runtime: Runtime) -> None:
    reports = [runtime.publisher.publish_lines([_started(f"r{n}")]) for n in range(50)]

    assert [len(r.job_ids) for r in reports] == [1] + [0] * 49
    assert _queued_jobs(runtime) == 1
    assert runtime.redis.zcard(keys.READY) == 50
    assert int(runtime.redis.get(keys.QUEUED) or 0) == 50


def test_a_turn_drains_every_ready_run_and_calls_in_help_while_runs_remain(
    runtime: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    runtime.publisher.publish_lines([_started(f"r{n}") for n in range(7)])
    runtime.redis.delete(keys.WAKE, make_queue(runtime.redis, "runstate").key)  # as if the job had started
    monkeypatch.setattr(ready, "CLAIM_RUNS", 3)

    report = ready.drain_ready(runtime, wake_consumed=True)

    assert report.outcomes == {"run.started:applied": 7}
    assert [runtime.store.get(f"r{n}") is not None for n in range(7)] == [True] * 7
    assert _queued_jobs(runtime) == 1  # one job for the runs left after the first claim, not one per claim
    assert (runtime.redis.zcard(keys.READY), int(runtime.redis.get(keys.QUEUED) or 0)) == (0, 0)


def test_a_live_worker_applies_an_event_on_its_wake_up_job_not_on_a_timer(redis_url: str, runtime: Runtime) -> None:
    worker = start_worker(redis_url, RUNSTATE_RECOVER_AFTER="50")  # the recovery timer would come 50 s late
    try:
        wait_until(lambda: runtime.redis.scard("rq:workers") == 1, timeout=30)
        for n in range(3):  # one quiet spell after another: each first event wakes a worker
            runtime.publisher.publish_lines([_started(f"live_{n}")])
            wait_until(lambda n=n: runtime.store.get(f"live_{n}") is not None, timeout=20)  # type: ignore[misc]
            time.sleep(0.2)
    finally:
        stop(worker)
    assert runtime.redis.zcard(keys.READY) == 0


def test_a_lost_wake_up_job_costs_only_the_recovery_delay(redis_url: str, runtime: Runtime) -> None:
    runtime.publisher.publish_lines([_started("lost")])
    runtime.redis.delete(make_queue(runtime.redis, "runstate").key)  # the job is gone; its flag is not
    worker = start_worker(redis_url, RUNSTATE_RECOVER_AFTER="1")
    try:
        wait_until(lambda: runtime.store.get("lost") is not None, timeout=30)
    finally:
        stop(worker)
    assert int(runtime.redis.get(keys.QUEUED) or 0) == 0


def test_finished_runs_leave_the_runs_index_when_their_keys_expire(redis_url: str, runtime: Runtime) -> None:
    short = Runtime(Settings(retention=1), runtime.redis)
    lines = [_started("gone"), orjson.dumps({"id": "end", "type": "run.completed", "run_id": "gone"}).decode()]
    short.publisher.publish_lines([*lines, _started("open")])
    short.processor.drain(["gone", "open"])
    assert short.redis.zrange(keys.RUNS, 0, -1) == [b"gone", b"open"]

    wait_until(lambda: not runtime.redis.exists(keys.run("gone")), timeout=10)
    time.sleep(0.05)  # the expiry entry is due a moment after the key's own TTL
    wait_until(lambda: short.store.prune_expired() >= 0 and runtime.redis.zcard(keys.RUNS) == 1, timeout=10)

    assert runtime.redis.zrange(keys.RUNS, 0, -1) == [b"open"]
    assert runtime.redis.zcard(keys.EXPIRIES) == 0


def test_a_run_id_that_came_back_stays_listed_when_its_old_expiry_falls_due(runtime: Runtime) -> None:
    short = Runtime(Settings(retention=1), runtime.redis)
    short.publisher.publish_lines([_started("again")])
    short.processor.drain(["again"])
    runtime.redis.zadd(keys.EXPIRIES, {"again": 0})  # an expiry from an earlier run with this id

    assert short.store.prune_expired() == 1
    assert runtime.redis.zrange(keys.RUNS, 0, -1) == [b"again"]
