"""Whatever is killed when: nothing lost, nothing applied twice, no event out of its run's order."""

import random
import signal
import time

import orjson

from statemachine.apply import Incoming, apply_event
from statemachine.events import parse_event
from statemachine.models import RunState
from tests.support.invariants import history_problems, stamp_problems
from tests.support.processes import runstate, start_worker, stop, wait_until
from worker import reads
from worker.runtime import Runtime
from worker.store.keys import ref

NOW = 1_795_600_860_000  # 10:01, after every event below: an uninterrupted pass applies them after they occur


def _run_script(run: str, steps: int) -> list[dict[str, object]]:
    at = "2026-11-25T10:00:{:02d}.{:03d}Z"
    events: list[dict[str, object]] = [
        {"id": f"{run}_s", "type": "run.started", "run_id": run, "occurred_at": at.format(0, 0)}
    ]
    for n in range(steps):
        events.append(
            {
                "id": f"{run}_c{n}",
                "type": "step.created",
                "run_id": run,
                "step_id": f"s{n}",
                "occurred_at": at.format(n + 1, 0),
            }
        )
        if n % 3 == 0:
            events.append(
                {"id": f"{run}_w{n}", "type": "run.waiting", "run_id": run, "occurred_at": at.format(n + 1, 1)}
            )
            events.append(
                {"id": f"{run}_r{n}", "type": "run.resumed", "run_id": run, "occurred_at": at.format(n + 1, 2)}
            )
        events.append(
            {
                "id": f"{run}_d{n}",
                "type": "step.completed",
                "run_id": run,
                "step_id": f"s{n}",
                "occurred_at": at.format(n + 1, 500),
                "data": {"usage": {"prompt_tokens": n + 1}},
            }
        )
    events.append({"id": f"{run}_z", "type": "run.completed", "run_id": run, "occurred_at": at.format(59, 0)})
    return events


def _expected(events: list[dict[str, object]]) -> RunState:
    """The run a single, uninterrupted, in-order pass makes of these events."""
    state = None
    seen: set[str] = set()
    for raw in events:
        event = parse_event(orjson.dumps(raw))
        result = apply_event(state, Incoming(event), now=NOW, seen=seen)
        if result.remember_id:
            seen.add(event.id)
        assert isinstance(result.state, RunState)
        state = result.state
    assert state is not None
    return state


def _comparable(state: RunState) -> dict[str, object]:
    return {"run": state.run.model_dump(), "steps": {k: v.model_dump() for k, v in state.steps.items()}}


def test_workers_sigkilled_at_random_instants_lose_nothing_and_apply_nothing_twice(
    redis_url: str, runtime: Runtime
) -> None:
    runs = {f"r_fault_{n}": _run_script(f"r_fault_{n}", 12) for n in range(40)}
    # interleave the runs and send every event twice (a producer's retry)
    interleaved = [
        e for i in range(max(map(len, runs.values()))) for evs in runs.values() if i < len(evs) for e in [evs[i]]
    ]
    body = b"".join(orjson.dumps(e) + b"\n" for e in interleaved + interleaved)
    assert runstate(["publish", "-"], redis_url, stdin=body, RUNSTATE_BATCH_SIZE="25").returncode == 0
    rng = random.Random(11)
    for _ in range(8):
        workers = [start_worker(redis_url, RUNSTATE_RECOVER_AFTER="1") for _ in range(2)]
        time.sleep(rng.uniform(0.05, 0.6))
        for worker in workers:
            worker.send_signal(signal.SIGKILL)
            worker.communicate(timeout=30)
    survivor = start_worker(redis_url, RUNSTATE_RECOVER_AFTER="1")
    try:
        took = wait_until(
            lambda: all(runtime.redis.llen(f"runstate:inbox:{{default/{r}}}") == 0 for r in runs), timeout=60
        )
    finally:
        stop(survivor)
    assert took < 60
    total = sum(len(events) for events in runs.values())
    stats = reads.stats(runtime.store)
    assert stats["applied"] == total
    assert stats["duplicate"] == total
    for run_id, events in runs.items():
        state = runtime.store.get(ref("default", run_id))
        assert state is not None
        assert _comparable(state) == _comparable(_expected(events)), run_id
        assert stamp_problems(state) == []
        assert history_problems(state, runtime.store.history(ref("default", run_id))) == []
        assert [t.event_id for t in runtime.store.history(ref("default", run_id)) if t.origin == "event"][
            -1
        ] == f"{run_id}_z"


def test_sigterm_finishes_the_current_job_then_stops(redis_url: str, runtime: Runtime) -> None:
    worker = start_worker(redis_url)
    wait_until(lambda: runtime.redis.scard("rq:workers") == 1)
    events = _run_script("r_term", 150)
    runtime.publisher.publish_lines([orjson.dumps(e).decode() for e in events])
    wait_until(lambda: runtime.store.get(ref("default", "r_term")) is not None, timeout=30)
    worker.send_signal(signal.SIGTERM)
    _, errors = worker.communicate(timeout=60)
    assert worker.returncode == 0, errors.decode()[-2000:]
    state = runtime.store.get(ref("default", "r_term"))
    assert state is not None
    assert state.run.status == "completed"
    assert runtime.redis.llen("runstate:inbox:{default/r_term}") == 0


def test_a_lost_job_is_recovered_by_the_sweep_of_any_worker(redis_url: str, runtime: Runtime) -> None:
    runtime.publisher.publish_lines(['{"id": "e1", "type": "run.completed", "run_id": "r_lost"}'])
    runtime.redis.delete("rq:queue:runstate")  # the job vanishes, as with a worker killed after BLPOP
    worker = start_worker(redis_url, RUNSTATE_RECOVER_AFTER="1")
    try:
        took = wait_until(lambda: runtime.store.get(ref("default", "r_lost")) is not None, timeout=60)
    finally:
        stop(worker)
    assert took < 20  # the publisher's RUNSTATE_RECOVER_AFTER (10 s) plus a sweep; the promise is 60 s
    assert runtime.store.get(ref("default", "r_lost")).run.status == "completed"  # type: ignore[union-attr]


def _durability_warnings(runtime: Runtime, redis_url: str, **config: str) -> list[str]:
    """Start a burst worker with the test server configured so; its warnings, the config restored."""
    before = {name: runtime.redis.config_get(name)[name] for name in config}
    for name, value in config.items():
        runtime.redis.config_set(name, value)
    try:
        worker = start_worker(redis_url, "--burst")
        _, errors = worker.communicate(timeout=60)
    finally:
        for name, value in before.items():
            runtime.redis.config_set(name, value)
    assert worker.returncode == 0
    lines = [orjson.loads(line) for line in errors.decode().splitlines() if "redis.durability" in line]
    return [line["problem"].split(":")[0] for line in lines]


def test_worker_warns_at_start_when_redis_may_evict_or_persists_nothing(redis_url: str, runtime: Runtime) -> None:
    warnings = _durability_warnings(runtime, redis_url, save="", appendonly="no", **{"maxmemory-policy": "allkeys-lru"})
    assert warnings == ["maxmemory-policy is allkeys-lru", "Redis persists nothing (no AOF, no RDB saves)"]


def test_worker_says_nothing_of_durability_when_redis_keeps_everything(redis_url: str, runtime: Runtime) -> None:
    assert _durability_warnings(runtime, redis_url, appendonly="yes", appendfsync="always") == []
