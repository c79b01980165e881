"""Ready runs and wake-up jobs: one RQ job per worker turn, never per event, and nothing lost
when a job is; the queue depth and the runs indexes stay exact."""

import time

import orjson
import pytest

from tests.support.processes import start_worker, stop, wait_until
from tests.support.publishing import refs
from worker.drain import turns as ready
from worker.intake.queue import make_queue
from worker.runtime import Runtime
from worker.settings import Settings
from worker.store import keys
from worker.store import runs as store
from worker.store.keys import ref


def _started(run_id: str) -> str:
    return orjson.dumps({"id": f"{run_id}_s", "type": "run.started", "run_id": run_id}).decode()


def _queued_jobs(runtime: Runtime) -> int:
    return len(make_queue(runtime.redis, runtime.settings.queue_name))


def test_fifty_publishes_while_no_worker_runs_enqueue_one_wake_up_job(
    runtime: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(store, "WAKE_TTL_MS", 600_000)  # however slow the machine, the flag outlives the loop
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
    assert [runtime.store.get(ref("default", f"r{n}")) is not None for n in range(7)] == [True] * 7
    assert _queued_jobs(runtime) == 1  # one job for the runs left after the first claim, not one per claim
    assert (runtime.redis.zcard(keys.READY), int(runtime.redis.get(keys.QUEUED) or 0)) == (0, 0)


def test_claims_shrink_as_a_backlog_ends_so_workers_draining_it_together_finish_together(runtime: Runtime) -> None:
    runtime.publisher.publish_lines([_started(f"r{n:02}") for n in range(20)])

    claims = []
    while claim := runtime.store.claim_ready(100, wake_consumed=False, fewest=3, share=4).runs:
        claims.append(list(claim))

    assert [len(c) for c in claims] == [5, 4, 3, 3, 3, 2]  # a quarter of what waits, never fewer than 3
    assert [r for c in claims for r in c] == refs(*(f"r{n:02}" for n in range(20)))  # oldest first, each once
    assert runtime.store.claim_ready(100, wake_consumed=False).runs == {}


def test_a_live_worker_applies_an_event_on_its_wake_up_job_not_on_a_timer(redis_url: str, runtime: Runtime) -> None:
    late_timers = Runtime(Settings(recover_after=50), runtime.redis)  # a recovery would come after the wait
    worker = start_worker(redis_url, RUNSTATE_RECOVER_AFTER="50")
    try:
        wait_until(lambda: runtime.redis.scard("rq:workers") == 1, timeout=30)
        for n in range(3):  # one quiet spell after another: each first event wakes a worker
            late_timers.publisher.publish_lines([_started(f"live_{n}")])
            wait_until(lambda n=n: runtime.store.get(ref("default", f"live_{n}")) is not None, timeout=20)  # type: ignore[misc]
            time.sleep(0.2)
    finally:
        stop(worker)
    assert runtime.redis.zcard(keys.READY) == 0


def test_a_lost_wake_up_job_costs_only_the_recovery_delay(redis_url: str, runtime: Runtime) -> None:
    Runtime(Settings(recover_after=1), runtime.redis).publisher.publish_lines([_started("lost")])
    runtime.redis.delete(make_queue(runtime.redis, "runstate").key)  # the job is gone; its flag is not
    worker = start_worker(redis_url, RUNSTATE_RECOVER_AFTER="1")
    try:
        wait_until(lambda: runtime.store.get(ref("default", "lost")) is not None, timeout=30)
    finally:
        stop(worker)
    assert int(runtime.redis.get(keys.QUEUED) or 0) == 0


def test_finished_runs_leave_the_runs_index_when_their_keys_expire(redis_url: str, runtime: Runtime) -> None:
    short = Runtime(Settings(retention=1), runtime.redis)
    lines = [_started("gone"), orjson.dumps({"id": "end", "type": "run.completed", "run_id": "gone"}).decode()]
    short.publisher.publish_lines([*lines, _started("open")])
    short.processor.drain(refs("gone", "open"))
    assert short.redis.zrange(keys.RUNS, 0, -1) == [b"default/gone", b"default/open"]
    assert short.redis.zrange(keys.account_runs("default"), 0, -1) == [b"default/gone", b"default/open"]

    assert runtime.redis.zscore(keys.EXPIRIES, ref("default", "gone")) == runtime.redis.pexpiretime(
        keys.run(ref("default", "gone"))
    )  # one instant
    wait_until(lambda: not runtime.redis.exists(keys.run(ref("default", "gone"))), timeout=10)
    assert short.store.prune_expired() == 1

    assert runtime.redis.zrange(keys.RUNS, 0, -1) == [b"default/open"]
    assert runtime.redis.zrange(keys.account_runs("default"), 0, -1) == [b"default/open"]
    tombstone = keys.tombstone(ref("default", "gone"))  # still due: the account holds the id until it goes
    assert runtime.redis.zscore(keys.EXPIRIES, "default/gone") == pytest.approx(
        runtime.redis.pexpiretime(tombstone), abs=50
    )
    assert runtime.store.owners(["gone"]) == {"gone": {"default"}}

    wait_until(lambda: not runtime.redis.exists(tombstone), timeout=10)
    assert short.store.prune_expired() == 1
    assert runtime.redis.zcard(keys.EXPIRIES) == 0
    assert runtime.store.owners(["gone", "open"]) == {"gone": set(), "open": {"default"}}


def test_a_run_kept_longer_than_its_expiry_entry_said_is_looked_at_again_later(runtime: Runtime) -> None:
    short = Runtime(Settings(retention=60), runtime.redis)
    lines = [_started("kept"), orjson.dumps({"id": "end", "type": "run.completed", "run_id": "kept"}).decode()]
    short.publisher.publish_lines(lines)
    short.processor.drain(refs("kept"))
    runtime.redis.zadd(keys.EXPIRIES, {"default/kept": 0})  # due now, but its keys live on (a late commit moved them)

    assert short.store.prune_expired() == 1
    assert runtime.redis.zrange(keys.RUNS, 0, -1) == [b"default/kept"]
    assert runtime.redis.zscore(keys.EXPIRIES, "default/kept") == pytest.approx(
        runtime.redis.pexpiretime(keys.run(ref("default", "kept"))), abs=50
    )


def test_a_run_id_that_came_back_stays_listed_when_its_old_expiry_falls_due(runtime: Runtime) -> None:
    short = Runtime(Settings(retention=1), runtime.redis)
    short.publisher.publish_lines([_started("again")])
    short.processor.drain(refs("again"))
    runtime.redis.zadd(keys.EXPIRIES, {"default/again": 0})  # an expiry from an earlier run with this id

    assert short.store.prune_expired() == 1
    assert runtime.redis.zrange(keys.RUNS, 0, -1) == [b"default/again"]
    assert runtime.redis.zrange(keys.account_runs("default"), 0, -1) == [b"default/again"]
    assert runtime.redis.zcard(keys.EXPIRIES) == 0  # the open run adds its own when it ends


def test_a_turn_that_redis_fails_gives_its_runs_back_to_the_ready_set(
    runtime: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    runtime.publisher.publish_lines([_started(f"r{n}") for n in range(5)])

    def refused(commits: object) -> list[bool]:
        raise ConnectionError("Redis went away")

    monkeypatch.setattr(runtime.store, "commit", refused)
    with pytest.raises(ConnectionError):
        ready.drain_ready(runtime, wake_consumed=True)

    assert sorted(runtime.redis.zrange(keys.READY, 0, -1)) == [f"default/r{n}".encode() for n in range(5)]
    assert int(runtime.redis.get(keys.QUEUED) or 0) == 5  # nothing was taken from an inbox


def test_a_passed_deadline_behind_held_events_brings_a_worker_back_when_their_wait_ends(runtime: Runtime) -> None:
    patient = Runtime(Settings(reorder_window=30), runtime.redis)
    now = runtime.store.now_ms() / 1000
    timed_out_9_s_ago = {"timeout_seconds": 1}
    events = [
        {"id": "s", "type": "run.started", "run_id": "r_wait", "sequence": 1, "occurred_at": now - 10},
        {"id": "w", "type": "run.waiting", "run_id": "r_wait", "sequence": 3},  # 2 is missing: held
    ]
    events[0]["data"] = timed_out_9_s_ago
    patient.publisher.publish_lines([orjson.dumps(e).decode() for e in events])
    patient.processor.drain(refs("r_wait"))

    due = runtime.redis.zscore(keys.TIMERS, keys.run_timer(ref("default", "r_wait")))
    assert due is not None
    assert due >= runtime.store.now_ms() + 25_000  # not in the past: no sweep spins on it meanwhile
    assert runtime.store.get(ref("default", "r_wait")).run.status == "running"  # type: ignore[union-attr]
