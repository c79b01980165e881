"""The HTTP API with FastAPI's TestClient, against the test redis-server: tenancy and error codes."""

import asyncio
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from starlette.requests import Request

from tests.support.publishing import refs
from worker.api.app import create_app
from worker.api.errors import ApiError
from worker.api.events import read_body
from worker.runtime import Runtime
from worker.settings import Settings

A = {"authorization": "Bearer tok_a"}
B = {"authorization": "Bearer tok_b"}


@pytest.fixture
def api(runtime: Runtime, monkeypatch: pytest.MonkeyPatch) -> Iterator[TestClient]:
    monkeypatch.setenv("RUNSTATE_API_TOKENS", "tok_a:acct_a,tok_b:acct_b")
    with TestClient(create_app(Runtime(Settings(), runtime.redis)), raise_server_exceptions=False) as client:
        yield client


def _run(api: TestClient, runtime: Runtime) -> None:
    events = [
        {"id": "e1", "type": "run.started", "run_id": "r_api", "data": {"runnable_id": "rbl"}},
        {"id": "e2", "type": "step.created", "run_id": "r_api", "step_id": "s1", "data": {"model": "gpt-4o"}},
        {
            "id": "e3",
            "type": "step.completed",
            "run_id": "r_api",
            "step_id": "s1",
            "data": {"usage": {"prompt_tokens": 10, "completion_tokens": 2}, "cost_usd": 0.001},
        },
        {"id": "e4", "type": "step.created", "run_id": "r_api", "step_id": "s2"},
        {"id": "bad", "type": "run.finished", "run_id": "r_api"},
    ]
    answer = api.post("/v1/events", json=events, headers=A)
    assert answer.status_code == 202
    assert answer.json()["accepted"] == 4
    assert [r["index"] for r in answer.json()["rejected"]] == [4]
    runtime.processor.drain(refs("r_api", account="acct_a"))


def test_a_token_reads_its_own_run_in_refactor_shape(api: TestClient, runtime: Runtime) -> None:
    _run(api, runtime)
    run = api.get("/v1/run/r_api", headers=A).json()
    assert (run["id"], run["account_id"], run["status"], run["total_input_tokens"]) == (
        "r_api",
        "acct_a",
        "running",
        10,
    )
    assert api.get("/v1/runs/r_api", headers=A).json() == run


def test_another_accounts_run_is_404_like_a_missing_one(api: TestClient, runtime: Runtime) -> None:
    _run(api, runtime)
    theirs, missing = api.get("/v1/run/r_api", headers=B), api.get("/v1/run/r_nowhere", headers=B)
    assert (theirs.status_code, missing.status_code) == (404, 404)
    assert theirs.json()["error"]["code"] == missing.json()["error"]["code"] == "RESOURCE_NOT_FOUND"
    assert api.get("/v1/runs/r_api/steps", headers=B).status_code == 404
    assert api.get("/v1/runs", headers=B).json()["data"] == []


def test_steps_list_pages_in_creation_order_in_every_format(api: TestClient, runtime: Runtime) -> None:
    _run(api, runtime)
    first = api.get("/v1/runs/r_api/steps", params={"limit": 1}, headers=A).json()
    assert (first["object"], [s["id"] for s in first["data"]], first["has_more"]) == ("list", ["s1"], True)
    assert first["data"][0]["object"] == "thread.run.step"
    rest = api.get("/v1/runs/r_api/steps", params={"after": first["last_id"]}, headers=A).json()
    assert ([s["id"] for s in rest["data"]], rest["has_more"]) == (["s2"], False)
    letta = api.get("/v1/runs/r_api/steps/s1", params={"format": "letta"}, headers=A).json()
    assert (letta["status"], letta["prompt_tokens"]) == ("success", 10)
    history = api.get("/v1/runs/r_api/history", headers=A).json()["data"]
    assert [h["n"] for h in history] == [1, 2, 3, 4]


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        (b"{not json", 400, "INVALID_INPUT"),
        (b'{"id": "e", "type": "run.nope", "run_id": "r"}', 400, "INVALID_INPUT"),
        (b'"a string"', 422, "INVALID_INPUT"),
        (b"[]", 422, "INVALID_INPUT"),
        (b"[" + b",".join([b"{}"] * 1001) + b"]", 422, "INVALID_INPUT"),
        (b'{"pad": "' + b"x" * 1_048_576 + b'"}', 413, "INVALID_INPUT"),
    ],
    ids=["malformed", "none-valid", "wrong-shape", "empty", "over-1000", "over-1MiB"],
)
def test_bad_bodies_get_the_right_error(api: TestClient, body: bytes, status: int, code: str) -> None:
    answer = api.post("/v1/events", content=body, headers={**A, "content-type": "application/json"})
    assert answer.status_code == status
    assert answer.json()["error"]["code"] == code
    assert answer.json()["error"]["message"]


def test_missing_or_unknown_tokens_are_401_and_open_routes_need_none(api: TestClient) -> None:
    for headers in ({}, {"authorization": "Bearer nope"}, {"authorization": "Basic tok_a"}):
        answer = api.get("/v1/runs", headers=headers)
        assert (answer.status_code, answer.json()["error"]["code"]) == (401, "AUTHORIZATION_ERROR")
    assert api.get("/healthz").json() == {"status": "ok"}
    assert api.get("/openapi.json").json()["info"]["title"] == "runstate"


def test_an_event_naming_another_account_is_refused_in_the_answer_not_queued(api: TestClient, runtime: Runtime) -> None:
    events = [
        {"id": "ok", "type": "run.started", "run_id": "r_named", "data": {"account_id": "acct_a"}},
        {"id": "x", "type": "run.started", "run_id": "r_named", "data": {"account_id": "acct_b"}},
    ]
    answer = api.post("/v1/events", json=events, headers=A)
    assert (answer.status_code, answer.json()["accepted"]) == (202, 1)
    assert answer.json()["rejected"] == [
        {
            "index": 1,
            "error": "data.account_id: 'acct_b' is not the token's account (an event posted here is the token's)",
        }
    ]
    assert runtime.store.owners(["r_named"]) == {"r_named": {"acct_a"}}  # nothing queued for acct_b


def test_runs_list_pages_with_after_within_the_tokens_account(api: TestClient, runtime: Runtime) -> None:
    for run_id, headers in (("r0", A), ("r1", A), ("rb", B), ("r2", A)):
        answer = api.post("/v1/events", json={"id": "s", "type": "run.started", "run_id": run_id}, headers=headers)
        assert answer.status_code == 202
    runtime.processor.drain(refs("r0", "r1", "rb", "r2", account="acct_a"))

    first = api.get("/v1/runs", params={"limit": 2}, headers=A).json()
    rest = api.get("/v1/runs", params={"after": first["last_id"]}, headers=A).json()
    theirs = api.get("/v1/runs", params={"after": "rb"}, headers=A)

    assert ([r["id"] for r in first["data"]], first["first_id"], first["last_id"], first["has_more"]) == (
        ["r0", "r1"],
        "r0",
        "r1",
        True,
    )
    assert ([r["id"] for r in rest["data"]], rest["has_more"]) == (["r2"], False)
    assert (theirs.status_code, theirs.json()["error"]["code"]) == (400, "INVALID_INPUT")
    assert theirs.json() == api.get("/v1/runs", params={"after": "rb"}, headers=A).json()


def test_a_chunked_body_over_one_mebibyte_is_refused_with_413(api: TestClient) -> None:
    def chunks() -> Iterator[bytes]:
        yield from (b"x" * 65_536 for _ in range(20))  # 1.25 MiB, no content-length

    answer = api.post("/v1/events", content=chunks(), headers={**A, "content-type": "application/json"})
    assert (answer.status_code, answer.json()["error"]["code"]) == (413, "INVALID_INPUT")


def test_a_client_that_goes_away_mid_upload_is_answered_400_not_logged_as_a_crash() -> None:
    async def gone() -> dict[str, str]:
        return {"type": "http.disconnect"}

    request = Request({"type": "http", "method": "POST", "headers": []}, gone)
    with pytest.raises(ApiError) as refused:
        asyncio.run(read_body(request))
    assert (refused.value.status_code, refused.value.code) == (400, "INVALID_INPUT")
