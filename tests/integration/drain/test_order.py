"""Per-run order with many workers, `sequence` with its reorder window, and the gap counter."""

import orjson

from tests.support.processes import runstate, start_worker, stop, wait_until
from tests.support.publishing import publish, refs
from worker.runtime import Runtime
from worker.store import keys
from worker.store.keys import ref


def _lines(events: list[dict[str, object]]) -> bytes:
    return b"".join(orjson.dumps(e) + b"\n" for e in events)


def test_three_workers_apply_each_runs_events_in_publish_order(redis_url: str, runtime: Runtime) -> None:
    """waiting then resumed, a moment apart, in separate jobs: never applied the wrong way round."""
    runs = 60
    script = [
        ("a", "run.started"),
        ("w0", "run.waiting"),
        ("r0", "run.resumed"),
        ("w1", "run.waiting"),
        ("r1", "run.resumed"),
        ("w2", "run.waiting"),
        ("r2", "run.resumed"),
        ("z", "run.completed"),
    ]
    # one round per event kind, so consecutive jobs (one event each) belong to different runs
    events = [
        {"id": f"r_order_{n}_{suffix}", "type": kind, "run_id": f"r_order_{n}"}
        for suffix, kind in script
        for n in range(runs)
    ]
    published = runstate(["publish", "-"], redis_url, stdin=_lines(events), RUNSTATE_BATCH_SIZE="1")
    assert published.returncode == 0, published.stderr
    workers = [start_worker(redis_url, "--burst") for _ in range(3)]
    for worker in workers:
        _, errors = worker.communicate(timeout=240)
        assert worker.returncode == 0, errors.decode()[-2000:]

    for n in range(runs):
        run = f"r_order_{n}"
        history = runtime.store.history(ref("default", run))
        assert [t.to for t in history] == ["running", *["waiting", "running"] * 3, "completed"], run
        assert [t.event_id for t in history] == [f"{run}_{x}" for x in ("a", "w0", "r0", "w1", "r1", "w2", "r2", "z")]
    assert runtime.store.stats() == {
        "run.started:applied": runs,
        "run.waiting:applied": 3 * runs,
        "run.resumed:applied": 3 * runs,
        "run.completed:applied": runs,
    }


def test_an_event_ahead_of_a_sequence_gap_waits_then_is_applied_and_the_gap_counted(
    redis_url: str, runtime: Runtime
) -> None:
    worker = start_worker(redis_url, RUNSTATE_REORDER_WINDOW="1")
    try:
        first = [
            {"id": "e1", "type": "run.started", "run_id": "r_seq", "sequence": 1},
            {"id": "e3", "type": "run.waiting", "run_id": "r_seq", "sequence": 3},
        ]
        assert runstate(["publish", "-"], redis_url, stdin=_lines(first)).returncode == 0
        wait_until(lambda: runtime.store.get(ref("default", "r_seq")) is not None)
        assert runtime.store.get(ref("default", "r_seq")).run.status == "running"  # type: ignore[union-attr]
        waited = wait_until(lambda: runtime.store.get(ref("default", "r_seq")).run.status == "waiting", timeout=30)  # type: ignore[union-attr]
        assert waited < 10
        state = runtime.store.get(ref("default", "r_seq"))
        assert state is not None
        assert state.last_sequence == 3
        assert runtime.store.stats()["gaps"] == 1

        late = [{"id": "e2", "type": "run.completed", "run_id": "r_seq", "sequence": 2}]
        assert runstate(["publish", "-"], redis_url, stdin=_lines(late)).returncode == 0
        wait_until(lambda: runtime.store.stats().get("run.completed:stale", 0) == 1)
        assert runtime.store.get(ref("default", "r_seq")).run.status == "waiting"  # type: ignore[union-attr]
    finally:
        logged = stop(worker)
    assert "sequence.gap" in logged


def test_a_gap_that_fills_within_the_window_releases_everything_in_order(redis_url: str, runtime: Runtime) -> None:
    events = [
        {"id": "e3", "type": "run.completed", "run_id": "r_fill", "sequence": 3},
        {"id": "e2", "type": "run.resumed", "run_id": "r_fill", "sequence": 2},
        {"id": "e1", "type": "run.waiting", "run_id": "r_fill", "sequence": 1},
    ]
    assert runstate(["publish", "-"], redis_url, stdin=_lines(events), RUNSTATE_BATCH_SIZE="1").returncode == 0
    assert runstate(["worker", "--burst"], redis_url).returncode == 0
    history = runtime.store.history(ref("default", "r_fill"))
    assert [(t.event_id, t.to) for t in history] == [
        ("e1", "running"),
        ("e1", "waiting"),
        ("e2", "running"),
        ("e3", "completed"),
    ]
    assert "gaps" not in runtime.store.stats()


def test_a_rejected_sequenced_event_still_moves_the_sequence_on(runtime: Runtime) -> None:
    publish(
        runtime,
        {"id": "a", "type": "run.started", "run_id": "r_rej", "sequence": 1},
        {"id": "b", "type": "run.waiting", "run_id": "r_rej", "sequence": 2},
        {"id": "c", "type": "run.completed", "run_id": "r_rej", "sequence": 3},  # rejected: it is waiting
    )
    runtime.processor.drain(refs("r_rej"))
    publish(runtime, {"id": "d", "type": "run.resumed", "run_id": "r_rej", "sequence": 4})
    runtime.processor.drain(refs("r_rej"))
    state = runtime.store.get(ref("default", "r_rej"))
    assert state is not None
    assert (state.run.status, state.last_sequence) == ("running", 4)
    assert runtime.redis.get(keys.held(ref("default", "r_rej"))) is None
