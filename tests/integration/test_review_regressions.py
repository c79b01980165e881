"""Faults a review found, each pinned by a test: none may come back."""

from pathlib import Path

import orjson
from rq import Queue
from rq.serializers import JSONSerializer

from tests.integration.conftest import runstate
from tests.integration.receiver import receiver
from worker.runtime import Runtime
from worker.store import keys


def _publish(runtime: Runtime, *events: dict[str, object]) -> None:
    assert runtime.publisher.publish_lines([orjson.dumps(e).decode() for e in events]).errors == []


def test_a_rejected_sequenced_event_still_moves_the_sequence_on(runtime: Runtime) -> None:
    _publish(
        runtime,
        {"id": "a", "type": "run.started", "run_id": "r_acct", "sequence": 1, "data": {"account_id": "acct_1"}},
        {"id": "b", "type": "run.started", "run_id": "r_acct", "sequence": 2, "data": {"account_id": "acct_2"}},
    )
    runtime.processor.drain(["r_acct"])
    _publish(runtime, {"id": "c", "type": "run.completed", "run_id": "r_acct", "sequence": 3})
    runtime.processor.drain(["r_acct"])
    state = runtime.store.get("r_acct")
    assert state is not None
    assert (state.run.status, state.last_sequence) == ("completed", 3)
    assert runtime.redis.get(keys.held("r_acct")) is None


def test_a_deadline_waits_behind_events_held_for_a_sequence_gap(runtime: Runtime) -> None:
    start = runtime.store.now_ms() / 1000 - 10
    _publish(
        runtime,
        {
            "id": "a",
            "type": "run.started",
            "run_id": "r_held",
            "sequence": 1,
            "occurred_at": start,
            "data": {"timeout_seconds": 5},
        },
        {"id": "c", "type": "run.completed", "run_id": "r_held", "sequence": 3, "occurred_at": start + 1},
    )
    runtime.processor.drain(["r_held"])  # the deadline has passed, but seq 3 waits for seq 2
    assert runtime.store.get("r_held").run.status == "running"  # type: ignore[union-attr]
    _publish(
        runtime,
        {
            "id": "b",
            "type": "step.created",
            "run_id": "r_held",
            "step_id": "s",
            "sequence": 2,
            "occurred_at": start + 0.5,
        },
    )
    runtime.processor.drain(["r_held"])
    state = runtime.store.get("r_held")
    assert state is not None
    assert (state.run.status, state.run.completed_at) == ("completed", int((start + 1) * 1000))


def test_an_unreadable_inbox_entry_is_rejected_and_blocks_no_other_run(runtime: Runtime) -> None:
    _publish(runtime, {"id": "a", "type": "run.started", "run_id": "r_good"})
    runtime.redis.rpush(keys.inbox("r_bad"), b"\xff\xfe not utf-8")
    report = runtime.processor.drain(["r_bad", "r_good"])
    assert report.failures == 0
    assert runtime.store.get("r_good") is not None
    assert [r["detail"] for r in runtime.store.rejected()] == ["queued entry: not valid UTF-8"]
    assert runtime.redis.llen(keys.inbox("r_bad")) == 0


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


def test_replay_applies_what_follows_a_sequence_gap_in_the_file(tmp_path: Path, redis_url: str) -> None:
    path = tmp_path / "gap.jsonl"
    path.write_text(
        '{"id": "a", "type": "run.started", "run_id": "r_gap", "sequence": 1}\n'
        '{"id": "c", "type": "run.completed", "run_id": "r_gap", "sequence": 3}\n'
    )
    replayed = runstate(["replay", str(path), "--json"], redis_url)
    assert replayed.returncode == 0, replayed.stderr
    assert orjson.loads(replayed.stdout)["status"] == "completed"


def test_publish_reports_a_line_that_is_not_utf8_and_keeps_the_rest(redis_url: str, runtime: Runtime) -> None:
    body = b'{"id": "a", "type": "run.started", "run_id": "r_u"}\n' + b"\xff\xfe\n"
    body += b'{"id": "b", "type": "run.completed", "run_id": "r_u"}\n'
    published = runstate(["publish", "-"], redis_url, stdin=body)
    assert published.returncode == 1
    assert "line 2: not valid UTF-8" in published.stderr.decode()
    assert runtime.redis.llen(keys.inbox("r_u")) == 2
