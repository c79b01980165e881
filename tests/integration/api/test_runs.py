"""Cancelling and deleting runs over HTTP (and `runstate delete run`), against the test redis-server."""

import re
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from click.testing import CliRunner
from fastapi.testclient import TestClient

from statemachine.models import Tombstone
from tests.support.apikit import A, B, api_client, open_run, post_events
from tests.support.publishing import refs
from worker.cli.main import main
from worker.runtime import Runtime
from worker.settings import Settings
from worker.store import keys
from worker.store.keys import ref
from worker.store.runs import Batch, Loaded

RETENTION = 604_800  # the default RUNSTATE_RETENTION


@pytest.fixture
def api(runtime: Runtime, monkeypatch: pytest.MonkeyPatch) -> Iterator[TestClient]:
    with api_client(runtime, monkeypatch) as client:
        yield client


def _transitions(api: TestClient, run_id: str) -> list[tuple[Any, ...]]:
    history = api.get(f"/v1/runs/{run_id}/history", headers=A).json()["data"]
    return [(h["n"], h["object"], h["id"], h["from"], h["to"], h["event_id"], h["origin"]) for h in history]


def _run_keys(runtime: Runtime, run_id: str) -> dict[str, Any]:
    """Everything Redis holds for the run, by what it is."""
    redis, run = runtime.redis, ref("acct_a", run_id)
    return {
        "run": sorted(redis.hkeys(keys.run(run))),
        "history": redis.exists(keys.history(run)),
        "seen": redis.exists(keys.seen(run)),
        "inbox": redis.exists(keys.inbox(run)),
        "held": redis.exists(keys.held(run)),
        "in_runs_index": redis.zscore(keys.RUNS, run) is not None,
        "in_accounts_runs_index": redis.zscore(keys.account_runs("acct_a"), run) is not None,
        "timer": redis.zscore(keys.TIMERS, keys.run_timer(run)) is not None,
        "tombstone": redis.get(keys.tombstone(run)),
    }


DELETED = {
    "run": [b"v"],  # a new version and no document: no drain that read the run before can write it back
    "history": 0,
    "seen": 0,
    "inbox": 0,
    "held": 0,
    "in_runs_index": False,
    "in_accounts_runs_index": False,
    "timer": False,
    "tombstone": b"deleted",
}


# --- cancel ------------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/v1/run/r1/cancel", "/v1/runs/r1/cancel"])
def test_cancel_queues_run_cancelled_with_origin_api_and_a_worker_applies_it(
    api: TestClient, runtime: Runtime, path: str
) -> None:
    open_run(api, runtime)
    answer = api.post(path, headers=A)
    assert answer.status_code == 202
    event_id = answer.json()["event_id"]
    assert answer.json() == {"run_id": "r1", "event_id": event_id, "status": "queued"}
    assert re.fullmatch(r"api_cancel_[0-9a-f]{24}", event_id)
    runtime.processor.drain(refs("r1", account="acct_a"))
    assert api.get("/v1/run/r1", headers=A).json()["status"] == "cancelled"
    assert _transitions(api, "r1")[-2:] == [
        (5, "run", "r1", "running", "cancelled", event_id, "api"),
        (6, "step", "s2", "in_progress", "cancelled", event_id, "cascade"),
    ]


def test_each_cancel_has_its_own_event_id(api: TestClient, runtime: Runtime) -> None:
    open_run(api, runtime)
    ids = {api.post("/v1/run/r1/cancel", headers=A).json()["event_id"] for _ in range(3)}
    assert len(ids) == 3


def test_cancelling_a_finished_run_is_409_conflict_and_queues_nothing(api: TestClient, runtime: Runtime) -> None:
    open_run(api, runtime)
    post_events(api, {"id": "done", "type": "run.completed", "run_id": "r1"})
    runtime.processor.drain(refs("r1", account="acct_a"))
    answer = api.post("/v1/run/r1/cancel", headers=A)
    assert (answer.status_code, answer.json()) == (
        409,
        {"error": {"code": "CONFLICT", "message": "run 'r1' is already completed; only an open run can be cancelled"}},
    )
    assert runtime.redis.llen(keys.inbox(ref("acct_a", "r1"))) == 0


def test_cancelling_another_accounts_run_is_the_404_of_a_missing_one_and_queues_nothing(
    api: TestClient, runtime: Runtime
) -> None:
    open_run(api, runtime)
    theirs, missing = api.post("/v1/run/r1/cancel", headers=B), api.post("/v1/run/nowhere/cancel", headers=B)
    assert (theirs.status_code, theirs.json()) == (
        404,
        {"error": {"code": "RESOURCE_NOT_FOUND", "message": "run 'r1' not found"}},
    )
    assert (missing.status_code, missing.json()) == (
        404,
        {"error": {"code": "RESOURCE_NOT_FOUND", "message": "run 'nowhere' not found"}},
    )
    assert runtime.redis.llen(keys.inbox(ref("acct_a", "r1"))) == 0


# --- delete ------------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/v1/runs/r1", "/v1/run/r1"])
def test_delete_removes_the_run_its_steps_history_and_queued_events_and_leaves_a_tombstone(
    api: TestClient, runtime: Runtime, path: str
) -> None:
    open_run(api, runtime)
    post_events(api, {"id": "ahead", "type": "step.created", "run_id": "r1", "step_id": "s9", "sequence": 3})
    runtime.processor.drain(refs("r1", account="acct_a"))  # held: it waits for sequence 1 and 2
    post_events(api, {"id": "queued", "type": "step.created", "run_id": "r1", "step_id": "s3"})  # in the inbox
    assert _run_keys(runtime, "r1") | {"run": [b"d", b"v"]} == {
        "run": [b"d", b"v"],
        "history": 1,
        "seen": 1,
        "inbox": 1,
        "held": 1,
        "in_runs_index": True,
        "in_accounts_runs_index": True,
        "timer": True,
        "tombstone": None,
    }
    answer = api.delete(path, headers=A)
    assert (answer.status_code, answer.content) == (204, b"")
    assert _run_keys(runtime, "r1") == DELETED
    assert 2 * RETENTION - 5 <= runtime.redis.ttl(keys.tombstone(ref("acct_a", "r1"))) <= 2 * RETENTION
    assert 2 * RETENTION - 5 <= runtime.redis.ttl(keys.run(ref("acct_a", "r1"))) <= 2 * RETENTION
    for gone in ("/v1/run/r1", "/v1/runs/r1/steps", "/v1/runs/r1/steps/s1", "/v1/runs/r1/history"):
        answer = api.get(gone, headers=A)
        assert (answer.status_code, answer.json()) == (
            410,
            {"error": {"code": "RESOURCE_DELETED", "message": "run 'r1' was deleted"}},
        )
    assert api.get("/v1/runs", headers=A).json()["data"] == []


def test_an_event_after_a_delete_is_stale_and_brings_nothing_back(api: TestClient, runtime: Runtime) -> None:
    open_run(api, runtime)
    assert api.delete("/v1/runs/r1", headers=A).status_code == 204
    post_events(
        api,
        {"id": "late", "type": "step.completed", "run_id": "r1", "step_id": "s2"},
        {"id": "again", "type": "run.started", "run_id": "r1"},
    )
    runtime.processor.drain(refs("r1", account="acct_a"))
    assert _run_keys(runtime, "r1") == DELETED
    assert api.get("/v1/run/r1", headers=A).status_code == 410
    assert list(runtime.store.rejected()) == []


def test_deleting_another_accounts_run_is_the_404_of_a_missing_one_and_deletes_nothing(
    api: TestClient, runtime: Runtime
) -> None:
    open_run(api, runtime)
    theirs, missing = api.delete("/v1/runs/r1", headers=B), api.delete("/v1/runs/nowhere", headers=B)
    assert (theirs.status_code, theirs.json()) == (
        404,
        {"error": {"code": "RESOURCE_NOT_FOUND", "message": "run 'r1' not found"}},
    )
    assert (missing.status_code, missing.json()["error"]["code"]) == (404, "RESOURCE_NOT_FOUND")
    assert api.get("/v1/run/r1", headers=A).json()["status"] == "running"
    assert api.delete("/v1/runs/r1", headers=A).status_code == 204
    assert api.delete("/v1/runs/r1", headers=A).status_code == 410  # deleted says so


def _after_first_load(runtime: Runtime, monkeypatch: pytest.MonkeyPatch, meanwhile: Callable[[], None]) -> list[Loaded]:
    """Make the runtime's drain run `meanwhile` right after its first load, before it commits:
    the instant another process acts between a worker's read and its compare-and-set."""
    load = runtime.store.load
    first: list[Loaded] = []

    def load_then_interleave(run_ids: Any, limit: int) -> Batch:
        batch = load(run_ids, limit)
        if not first:
            first.extend(batch.runs.values())
            meanwhile()
        return batch

    monkeypatch.setattr(runtime.store, "load", load_then_interleave)
    return first


def test_a_drain_that_read_the_run_before_a_delete_fails_its_compare_and_set_and_writes_nothing(
    api: TestClient, runtime: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    open_run(api, runtime)
    post_events(api, {"id": "e5", "type": "step.completed", "run_id": "r1", "step_id": "s2"})
    answers: list[int] = []
    first = _after_first_load(
        runtime, monkeypatch, lambda: answers.append(api.delete("/v1/runs/r1", headers=A).status_code)
    )
    report = runtime.processor.drain(refs("r1", account="acct_a"))
    assert answers == [204]
    assert (first[0].document is not None, len(first[0].inbox)) == (True, 1)  # it had read the run and e5
    assert report.conflicts == 1
    assert _run_keys(runtime, "r1") == DELETED
    run = ref("acct_a", "r1")
    assert runtime.store.load([run], 10).runs[run].state() == Tombstone("r1", "deleted")


def test_a_drain_that_read_no_run_yet_cannot_create_it_after_another_worker_made_it_and_it_was_deleted(
    api: TestClient, runtime: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    post_events(api, {"id": "e1", "type": "run.started", "run_id": "r1"})
    other_worker = Runtime(Settings(), runtime.redis)

    def create_then_delete() -> None:
        other_worker.processor.drain(refs("r1", account="acct_a"))
        assert api.delete("/v1/runs/r1", headers=A).status_code == 204

    first = _after_first_load(runtime, monkeypatch, create_then_delete)
    report = runtime.processor.drain(refs("r1", account="acct_a"))
    assert (first[0].version, first[0].document) == (0, None)  # it had read "no run yet"
    assert report.conflicts == 1
    assert _run_keys(runtime, "r1") == DELETED


# --- runstate delete run ------------------------------------------------------------------


def test_cli_delete_run_deletes_it_and_exits_1_naming_an_unknown_id(api: TestClient, runtime: Runtime) -> None:
    open_run(api, runtime)
    deleted = CliRunner().invoke(main, ["delete", "run", "r1"])
    assert (deleted.exit_code, deleted.output) == (0, "")
    assert _run_keys(runtime, "r1") == DELETED
    again = CliRunner().invoke(main, ["delete", "run", "r1"])
    assert (again.exit_code, again.output) == (1, "runstate: run 'r1' of account 'acct_a' was deleted\n")
    shown = CliRunner().invoke(main, ["show", "run", "r1"])
    assert (shown.exit_code, shown.output) == (1, "runstate: run 'r1' of account 'acct_a' was deleted\n")
    never = CliRunner().invoke(main, ["delete", "run", "r0"])
    assert (never.exit_code, never.output) == (1, "runstate: run 'r0' not found\n")
