"""Tenancy over HTTP (issue 13): a run is (account, run id) and the account is always the token's.
The same run id posted by two accounts is two runs, and nothing one account does with an id can
be told apart, by another, from an id that nobody holds."""

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.support.apikit import A, B, api_client, open_run, post_events
from tests.support.publishing import held
from worker.runtime import Runtime
from worker.store.keys import ref


@pytest.fixture
def api(runtime: Runtime, monkeypatch: pytest.MonkeyPatch) -> Iterator[TestClient]:
    with api_client(runtime, monkeypatch) as client:
        yield client


def _apply(runtime: Runtime, *run_ids: str) -> None:
    runtime.processor.drain(held(runtime, *run_ids))


def test_two_accounts_posting_one_run_id_get_two_independent_runs(api: TestClient, runtime: Runtime) -> None:
    open_run(api, runtime, "r_same", headers=A)  # two steps, one completed
    post_events(
        api,
        {"id": "e1", "type": "run.started", "run_id": "r_same", "data": {"runnable_id": "theirs"}},
        {"id": "e2", "type": "run.completed", "run_id": "r_same", "data": {"outputs": {"answer": 42}}},
        headers=B,
    )  # the same run id and the same event ids: neither is a duplicate of A's
    _apply(runtime, "r_same")

    ours, theirs = api.get("/v1/runs/r_same", headers=A).json(), api.get("/v1/runs/r_same", headers=B).json()
    assert (ours["account_id"], ours["status"], ours["runnable_id"], ours["total_input_tokens"]) == (
        "acct_a",
        "running",
        "rbl",
        10,
    )
    assert (theirs["account_id"], theirs["status"], theirs["runnable_id"], theirs["result"]["outputs"]) == (
        "acct_b",
        "completed",
        "theirs",
        {"answer": 42},
    )
    assert [s["id"] for s in api.get("/v1/runs/r_same/steps", headers=A).json()["data"]] == ["s1", "s2"]
    assert api.get("/v1/runs/r_same/steps", headers=B).json()["data"] == []
    assert [h["event_id"] for h in api.get("/v1/runs/r_same/history", headers=B).json()["data"]] == ["e1", "e2"]
    assert [r["id"] for r in api.get("/v1/runs", headers=B).json()["data"]] == ["r_same"]

    assert api.delete("/v1/runs/r_same", headers=B).status_code == 204  # B's run only
    assert api.post("/v1/runs/r_same/cancel", headers=A).status_code == 202
    _apply(runtime, "r_same")
    assert api.get("/v1/runs/r_same", headers=A).json()["status"] == "cancelled"
    assert api.get("/v1/runs/r_same", headers=B).status_code == 410  # B deleted its own run
    assert list(runtime.store.rejected()) == []


def test_an_id_taken_first_by_another_account_is_the_later_accounts_own_run(api: TestClient, runtime: Runtime) -> None:
    post_events(api, {"id": "b1", "type": "run.started", "run_id": "r_squat"}, headers=B)  # B takes the id first
    _apply(runtime, "r_squat")
    post_events(
        api,
        {"id": "a1", "type": "run.started", "run_id": "r_squat"},
        {"id": "a2", "type": "run.completed", "run_id": "r_squat"},
        headers=A,
    )
    _apply(runtime, "r_squat")

    assert api.get("/v1/runs/r_squat", headers=A).json()["status"] == "completed"  # not silently rejected
    assert api.get("/v1/runs/r_squat", headers=B).json()["status"] == "running"
    assert list(runtime.store.rejected()) == []


def _every_answer(api: TestClient, run_id: str) -> list[tuple[str, int, Any]]:
    """What account B is told about `run_id` by every route that takes a run id, the id masked."""
    calls = [
        ("GET", f"/v1/run/{run_id}", None),
        ("GET", f"/v1/runs/{run_id}", None),
        ("GET", f"/v1/runs/{run_id}/steps", None),
        ("GET", f"/v1/runs/{run_id}/steps/s1", None),
        ("GET", f"/v1/runs/{run_id}/history", None),
        ("GET", f"/v1/runs?after={run_id}", None),
        ("GET", f"/v1/runs?before={run_id}", None),
        ("GET", f"/azure/threads/t1/runs/{run_id}/steps", None),
        ("GET", f"/azure/threads/t1/runs/{run_id}/steps/s1", None),
        ("GET", f"/letta/v1/runs/{run_id}", None),
        ("GET", f"/letta/v1/runs/{run_id}/steps", None),
        ("POST", f"/v1/run/{run_id}/cancel", None),
        ("POST", f"/v1/runs/{run_id}/cancel", None),
        ("DELETE", f"/v1/runs/{run_id}", None),
        ("DELETE", f"/v1/run/{run_id}", None),
        ("POST", "/v1/events", {"id": "probe", "type": "step.created", "run_id": run_id, "step_id": "s1"}),
    ]
    answers = []
    for method, path, body in calls:
        answer = api.request(method, path, json=body, headers=B)
        answers.append(
            (f"{method} {path.replace(run_id, '<id>')}", answer.status_code, answer.text.replace(run_id, "<id>"))
        )
    return answers


def test_another_account_gets_the_same_answers_for_a_held_id_as_for_an_id_nobody_holds(
    api: TestClient, runtime: Runtime
) -> None:
    open_run(api, runtime, "r_held", headers=A)
    before = api.get("/v1/runs/r_held", headers=A).json()

    held_answers, free_answers = _every_answer(api, "r_held"), _every_answer(api, "r_free")

    assert held_answers == free_answers
    assert [status for _, status, _ in held_answers] == [404] * 5 + [400] * 2 + [404] * 8 + [202]
    _apply(runtime, "r_held", "r_free")
    assert api.get("/v1/runs/r_held", headers=A).json() == before  # B's probes touched nothing of A's
    for run_id in ("r_held", "r_free"):  # B's event made B's own run of either id: read back alike
        theirs = api.get(f"/v1/runs/{run_id}/steps", headers=B)
        assert (theirs.status_code, [s["id"] for s in theirs.json()["data"]]) == (200, ["s1"])
        assert api.get(f"/v1/runs/{run_id}", headers=B).json()["account_id"] == "acct_b"
    assert runtime.store.get(ref("acct_b", "r_held")) is not None


def test_another_accounts_deleted_run_answers_as_an_id_nobody_holds(api: TestClient, runtime: Runtime) -> None:
    open_run(api, runtime, "r_gone", headers=A)
    assert api.delete("/v1/runs/r_gone", headers=A).status_code == 204
    assert api.get("/v1/runs/r_gone", headers=A).status_code == 410  # its own account is told

    gone_answers, free_answers = _every_answer(api, "r_gone"), _every_answer(api, "r_free")

    assert gone_answers == free_answers  # no 410 leaks the other account's tombstone
    assert 410 not in [status for _, status, _ in gone_answers]


def test_letta_step_reads_find_only_the_tokens_accounts_step(api: TestClient, runtime: Runtime) -> None:
    open_run(api, runtime, "r_same", headers=A)  # steps s1, s2
    assert api.get("/letta/v1/steps/s1", headers=A).json()["run_id"] == "r_same"
    mine, free = api.get("/letta/v1/steps/s1", headers=B), api.get("/letta/v1/steps/s_free", headers=B)
    assert (mine.status_code, mine.text.replace("s1", "<id>")) == (404, free.text.replace("s_free", "<id>"))
