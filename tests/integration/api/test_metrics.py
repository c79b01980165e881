"""/metrics: Prometheus text read from Redis, so it reports what worker processes did."""

import time
from collections.abc import Iterator

import orjson
import pytest
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from tests.support.apikit import api_client
from tests.support.paths import EXAMPLE
from tests.support.processes import runstate, start_worker, stop, wait_until
from worker import reads
from worker.drain.metrics import APPLY_LATENCY, Recorder
from worker.runtime import Runtime
from worker.store import keys
from worker.store.keys import ref
from worker.store.subscriptions import Subscription, Subscriptions


@pytest.fixture
def api(runtime: Runtime, monkeypatch: pytest.MonkeyPatch) -> Iterator[TestClient]:
    with api_client(runtime, monkeypatch) as client:
        yield client


def _samples(api: TestClient) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    answer = api.get("/metrics")  # no token
    assert answer.status_code == 200
    assert answer.headers["content-type"].startswith("text/plain")
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(answer.text)
        for s in family.samples
    }


def test_a_worker_processes_counts_and_latencies_reach_metrics(
    api: TestClient, redis_url: str, runtime: Runtime
) -> None:
    assert runstate(["publish", str(EXAMPLE)], redis_url).returncode == 0
    assert runstate(["worker", "--burst"], redis_url).returncode == 0  # another process: only Redis connects them

    samples = _samples(api)

    by_type = reads.stats(runtime.store)["by_type"]
    counted = {
        (dict(labels)["type"], dict(labels)["outcome"]): value
        for (name, labels), value in samples.items()
        if name == "runstate_events_total" and value
    }
    assert counted == {(t, o): n for t, outcomes in by_type.items() for o, n in outcomes.items() if n}
    applied = sum(1 for line in EXAMPLE.read_text().splitlines() if line.strip())
    assert samples[("runstate_apply_latency_seconds_count", ())] == applied
    assert samples[("runstate_apply_latency_seconds_bucket", (("le", "+Inf"),))] == applied
    assert samples[("runstate_late_usage_total", ())] == 1
    assert samples[("runstate_queued_events", ())] == 0


def test_queue_gauges_count_what_waits_for_a_worker(api: TestClient, runtime: Runtime) -> None:
    lines = [orjson.dumps({"id": f"e{n}", "type": "run.started", "run_id": f"r{n % 2}"}).decode() for n in range(3)]
    runtime.publisher.publish_lines(lines)

    samples = _samples(api)

    assert samples[("runstate_queued_events", ())] == 3
    assert samples[("runstate_ready_runs", ())] == 2
    assert samples[("runstate_queued_jobs", ())] == 1
    assert samples[("runstate_ready_oldest_age_seconds", ())] >= 0
    assert samples[("runstate_timers", ())] == 2  # each ready run's recovery timer


def test_a_fired_deadline_records_its_timer_lag(api: TestClient, redis_url: str, runtime: Runtime) -> None:
    started = {"id": "s", "type": "run.started", "run_id": "r_late", "data": {"timeout_seconds": 1}}
    runtime.publisher.publish_lines([orjson.dumps(started).decode()])
    assert runstate(["worker", "--burst"], redis_url).returncode == 0
    time.sleep(1.2)
    assert runstate(["worker", "--burst"], redis_url).returncode == 0  # its sweep fires the timeout

    samples = _samples(api)

    assert runtime.store.get(ref("default", "r_late")).run.status == "timeout"  # type: ignore[union-attr]
    assert samples[("runstate_timer_lag_seconds_count", ())] >= 1  # a slow first worker may claim it too
    assert samples[("runstate_deadlines_fired_total", ())] == 1


def test_the_recorder_puts_each_value_in_the_first_bucket_that_holds_it(runtime: Runtime) -> None:
    recorder = Recorder()
    recorder.observe(APPLY_LATENCY, [0.001, 0.0011, 0.05, 100.0])
    recorder.flush(runtime.redis)
    recorder.flush(runtime.redis)  # nothing new: adds nothing

    stored = {k.decode(): float(v) for k, v in runtime.redis.hgetall(keys.METRICS).items()}
    assert stored == {
        "apply_latency:le:0.001": 1,
        "apply_latency:le:0.0025": 1,
        "apply_latency:le:0.05": 1,
        "apply_latency:le:+Inf": 1,
        "apply_latency:sum": pytest.approx(100.0521),
        "apply_latency:count": 4,
    }


def test_a_forking_workers_horses_report_their_latencies_too(redis_url: str, runtime: Runtime) -> None:
    worker = start_worker(redis_url, "--fork")
    try:
        wait_until(lambda: runtime.redis.scard("rq:workers") == 1, timeout=30)
        lines = [orjson.dumps({"id": "s", "type": "run.started", "run_id": f"f{n}"}).decode() for n in range(3)]
        runtime.publisher.publish_lines(lines)
        wait_until(lambda: all(runtime.store.get(ref("default", f"f{n}")) is not None for n in range(3)), timeout=30)
        wait_until(lambda: int(runtime.redis.hget(keys.METRICS, "apply_latency:count") or 0) == 3, timeout=30)
    finally:
        stop(worker)


def test_pending_webhook_deliveries_are_counted_across_every_subscription(api: TestClient, runtime: Runtime) -> None:
    subscriptions = Subscriptions(runtime.redis)
    for n in range(3):
        subscriptions.save(Subscription(account="default", url=f"https://hooks.example.com/{n}"))
    runs = [f"r_hook_{n}" for n in range(4)]
    started = [orjson.dumps({"id": "s", "type": "run.started", "run_id": r}).decode() for r in runs]
    runtime.publisher.publish_lines(started)
    runtime.processor.drain([ref("default", r) for r in runs])  # one delivery per run and subscription
    runtime.redis.zadd(keys.LEGACY_WEBHOOK_TIMERS, {"webhook:msg_sub_0000000000000000_old_1_1": 0})  # an older build's

    assert _samples(api)[("runstate_webhook_deliveries_pending", ())] == 3 * 4 + 1
