"""The inactivity timeout against a real Redis and real workers: any event received for a run
keeps it alive, silence times it out at its instant (never before, within a second), waiting
pauses the clock, and an outage fires it when a worker returns."""

import subprocess
import time

import orjson
import pytest
from fastapi.testclient import TestClient

from statemachine.models import RunState
from statemachine.timefmt import rfc3339
from tests.support.invariants import history_problems, stamp_problems
from tests.support.processes import runstate, start_worker, stop, wait_until
from tests.support.publishing import refs
from worker.api.app import create_app
from worker.runtime import Runtime
from worker.settings import Settings
from worker.store.keys import ref

QUIET = {"inactivity_timeout_seconds": 1}


def _publish(runtime: Runtime, *events: dict[str, object]) -> None:
    report = runtime.publisher.publish_lines([orjson.dumps(e).decode() for e in events])
    assert report.errors == []


def _now(runtime: Runtime) -> float:
    return runtime.store.now_ms() / 1000


def _state(runtime: Runtime, run_id: str, account: str = "default") -> RunState:
    state = runtime.store.get(ref(account, run_id))
    assert state is not None
    return state


def _status(runtime: Runtime, run_id: str) -> str | None:
    state = runtime.store.get(ref("default", run_id))
    return None if state is None else state.run.status.value


def _ready_worker(redis_url: str, runtime: Runtime) -> "subprocess.Popen[bytes]":
    """A live worker that has already applied an event: its start is not part of any timing."""
    worker = start_worker(redis_url)
    _publish(runtime, {"id": "w", "type": "run.started", "run_id": "r_warm_up"})
    wait_until(lambda: _status(runtime, "r_warm_up") == "running", timeout=30)
    return worker


def _until(runtime: Runtime, instant: float) -> None:
    """Let Redis's clock pass `instant` (seconds): time itself is what these tests are about."""
    time.sleep(max(0.0, instant - _now(runtime)))


def _timed_out_for_silence(runtime: Runtime, run_id: str) -> RunState:
    """The run timed out for silence at its last sign of life plus the timeout: never before
    that instant, and no more than a second after it."""
    state = _state(runtime, run_id)
    run = state.run
    assert run.active_at is not None
    instant = run.active_at + 1000
    assert (run.status, run.completed_at) == ("timeout", instant)
    assert run.error is not None
    assert (run.error.code, run.error.message) == ("TIMEOUT", "no event for 1 s")
    (fired,) = [t for t in runtime.store.history(ref("default", run_id)) if t.object == "run" and t.to == "timeout"]
    assert (fired.origin, fired.at, fired.note) == ("deadline", instant, "inactivity")
    assert 0 <= fired.applied_at - instant <= 1000
    assert stamp_problems(state) == []
    assert history_problems(state, runtime.store.history(ref("default", run_id))) == []
    return state


def test_heartbeats_keep_a_run_alive_past_several_timeouts_then_silence_ends_it(
    redis_url: str, runtime: Runtime
) -> None:
    worker = _ready_worker(redis_url, runtime)
    try:
        start = _now(runtime)
        _publish(
            runtime,
            {"id": "a", "type": "run.started", "run_id": "r_beat", "occurred_at": start, "data": QUIET},
            {"id": "b", "type": "step.created", "run_id": "r_beat", "step_id": "s1", "occurred_at": start},
        )
        for n in range(1, 13):  # 3.6 s of heartbeats, one every 0.3 s: past three timeouts
            _until(runtime, start + 0.3 * n)
            _publish(runtime, {"id": f"hb{n}", "type": "run.heartbeat", "run_id": "r_beat"})
        assert _status(runtime, "r_beat") == "running"
        wait_until(lambda: _status(runtime, "r_beat") == "timeout", timeout=10)
    finally:
        stop(worker)
    state = _timed_out_for_silence(runtime, "r_beat")
    assert state.run.active_at is not None
    assert state.run.active_at >= int((start + 3.6) * 1000)  # the last heartbeat's arrival
    assert state.steps["s1"].status == "expired"  # closed as for any timeout
    assert [t.event_type for t in runtime.store.history(ref("default", "r_beat"))] == [
        "run.started",
        "step.created",
        "run.timed_out",
        "run.timed_out",
    ]  # heartbeats leave no history
    stats = orjson.loads(runstate(["stats"], redis_url).stdout)
    assert stats["by_type"]["run.heartbeat"] == {"applied": 12, "duplicate": 0, "stale": 0, "rejected": 0}
    assert (stats["deadlines"], stats["inactivity_timeouts"]) == (1, 1)


def test_silence_times_a_run_out_within_a_second_of_its_instant(redis_url: str, runtime: Runtime) -> None:
    worker = _ready_worker(redis_url, runtime)
    runs = [f"r_quiet_{n}" for n in range(20)]
    try:
        start = _now(runtime)
        _publish(runtime, *({"id": "a", "type": "run.started", "run_id": r, "data": QUIET} for r in runs))
        wait_until(lambda: all(_status(runtime, r) == "timeout" for r in runs), timeout=10)
    finally:
        stop(worker)
    for run_id in runs:
        state = _timed_out_for_silence(runtime, run_id)
        assert state.run.active_at is not None
        assert start * 1000 - 1 <= state.run.active_at <= _now(runtime) * 1000


def test_waiting_pauses_the_clock_and_resuming_restarts_it(redis_url: str, runtime: Runtime) -> None:
    worker = _ready_worker(redis_url, runtime)
    try:
        start = _now(runtime)
        _publish(
            runtime,
            {"id": "a", "type": "run.started", "run_id": "r_wait", "occurred_at": start, "data": QUIET},
            {"id": "b", "type": "run.waiting", "run_id": "r_wait", "occurred_at": start},
        )
        wait_until(lambda: _status(runtime, "r_wait") == "waiting", timeout=10)
        _until(runtime, start + 2.5)  # two and a half timeouts of silence, all spent waiting
        assert _status(runtime, "r_wait") == "waiting"
        assert _state(runtime, "r_wait").run.inactive_at() is None
        _publish(runtime, {"id": "c", "type": "run.resumed", "run_id": "r_wait"})
        wait_until(lambda: _status(runtime, "r_wait") == "timeout", timeout=10)
    finally:
        stop(worker)
    state = _timed_out_for_silence(runtime, "r_wait")
    assert state.run.active_at is not None
    assert state.run.active_at >= int((start + 2.5) * 1000)  # the clock restarted at the resume


def test_an_outage_with_no_worker_fires_the_silence_at_its_instant_when_a_worker_returns(
    redis_url: str, runtime: Runtime
) -> None:
    runs = [f"r_out_{n}" for n in range(50)]
    start = _now(runtime)
    _publish(
        runtime, *({"id": "a", "type": "run.started", "run_id": r, "occurred_at": start, "data": QUIET} for r in runs)
    )
    runtime.processor.drain(refs(*runs))  # the runs exist; then every worker is gone
    _until(runtime, start + 2.2)  # the outage, during which every silence reaches its limit
    assert {_status(runtime, r) for r in runs} == {"running"}
    assert runstate(["worker", "--burst"], redis_url).returncode == 0
    for run_id in runs:
        state = _state(runtime, run_id)
        assert state.run.active_at is not None
        instant = state.run.active_at + 1000
        assert (state.run.status, state.run.completed_at) == ("timeout", instant)
        fired = runtime.store.history(ref("default", run_id))[-1]
        assert (fired.at, fired.note) == (instant, "inactivity")
        assert fired.applied_at >= int((start + 2.2) * 1000)  # fired late, stamped at its instant
    assert orjson.loads(runstate(["stats"], redis_url).stdout)["inactivity_timeouts"] == len(runs)


def test_a_backlog_in_runstates_queue_does_not_kill_a_live_run(redis_url: str, runtime: Runtime) -> None:
    start = _now(runtime)
    _publish(runtime, {"id": "a", "type": "run.started", "run_id": "r_backlog", "occurred_at": start, "data": QUIET})
    runtime.processor.drain(refs("r_backlog"))
    for n in range(1, 8):  # heartbeats every 0.4 s that no worker drains until the end
        _until(runtime, start + 0.4 * n)
        _publish(runtime, {"id": f"hb{n}", "type": "run.heartbeat", "run_id": "r_backlog"})
    runtime.processor.drain(refs("r_backlog"))  # 2.8 s after the start: each heartbeat counts when it arrived
    state = _state(runtime, "r_backlog")
    assert state.run.status == "running"
    assert state.run.active_at is not None
    assert state.run.active_at >= int((start + 2.8) * 1000)


@pytest.mark.parametrize("kind", ["duplicate", "stale"])
def test_duplicates_and_stale_events_count_as_activity(redis_url: str, runtime: Runtime, kind: str) -> None:
    worker = _ready_worker(redis_url, runtime)
    try:
        start = _now(runtime)
        _publish(runtime, {"id": "a", "type": "run.started", "run_id": "r_alive", "occurred_at": start, "data": QUIET})
        for n in range(1, 11):  # 3 s of events that change nothing, one every 0.3 s
            _until(runtime, start + 0.3 * n)
            again = {"id": "a", "type": "run.started", "run_id": "r_alive"}  # the same id: a duplicate
            if kind == "stale":
                again = {"id": f"again{n}", "type": "run.resumed", "run_id": "r_alive"}  # already running
            _publish(runtime, again)
        assert _status(runtime, "r_alive") == "running"
        wait_until(lambda: _status(runtime, "r_alive") == "timeout", timeout=10)
    finally:
        stop(worker)
    _timed_out_for_silence(runtime, "r_alive")
    counts = orjson.loads(runstate(["stats"], redis_url).stdout)["by_type"]
    expected = {"run.started": {"applied": 2, "duplicate": 10, "stale": 0, "rejected": 0}}  # and the warm-up
    if kind == "stale":
        expected = {
            "run.started": {"applied": 2, "duplicate": 0, "stale": 0, "rejected": 0},
            "run.resumed": {"applied": 0, "duplicate": 0, "stale": 10, "rejected": 0},
        }
    assert counts == expected


def test_the_run_shows_and_lists_its_inactivity_deadline(redis_url: str, runtime: Runtime) -> None:
    start = _now(runtime)
    data = {"inactivity_timeout_seconds": 300, "timeout_seconds": 600}
    _publish(runtime, {"id": "a", "type": "run.started", "run_id": "r_show", "occurred_at": start, "data": data})
    assert runstate(["worker", "--burst"], redis_url).returncode == 0
    shown = orjson.loads(runstate(["show", "run", "r_show"], redis_url).stdout)
    state = _state(runtime, "r_show")
    assert state.run.active_at is not None
    assert shown["inactivity_timeout_seconds"] == 300
    assert shown["inactive_at"] == rfc3339(state.run.active_at + 300_000)
    listed = [orjson.loads(line) for line in runstate(["deadlines"], redis_url).stdout.splitlines()]
    assert [(d["id"], d["kind"]) for d in listed] == [("r_show", "inactivity_timeout"), ("r_show", "run_timeout")]
    assert 290 < listed[0]["in_seconds"] <= 300


def test_the_http_api_accepts_heartbeats(runtime: Runtime, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RUNSTATE_API_TOKENS", "tok_a:acct_a")
    auth = {"authorization": "Bearer tok_a"}
    with TestClient(create_app(Runtime(Settings(), runtime.redis))) as api:
        started = {"id": "e1", "type": "run.started", "run_id": "r_http", "data": QUIET}
        assert api.post("/v1/events", json=started, headers=auth).json() == {"accepted": 1, "rejected": []}
        runtime.processor.drain(refs("r_http", account="acct_a"))
        first = _state(runtime, "r_http", "acct_a").run.active_at
        beat = {"id": "hb1", "type": "run.heartbeat", "run_id": "r_http"}
        answer = api.post("/v1/events", json=beat, headers=auth)
    assert (answer.status_code, answer.json()) == (202, {"accepted": 1, "rejected": []})
    runtime.processor.drain(refs("r_http", account="acct_a"))
    state = _state(runtime, "r_http", "acct_a")
    assert state.run.status == "running"
    assert first is not None
    assert state.run.active_at is not None
    assert state.run.active_at >= first
