"""The HTTP API's rate limit per token, shared through Redis, and its one error shape for every
failure: each error code with its status, unknown routes and methods, and crashes."""

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.support.apikit import A, B, api_client, open_run
from worker.api.ratelimit import RateLimit
from worker.runtime import Runtime

HOUR = 3600


def _limit(runtime: Runtime, amount: int) -> RateLimit:
    """`amount` requests per token an hour: a window no slow machine can outlast within a test."""
    return RateLimit(runtime.redis, runtime.settings.effective_redis_url, amount, seconds=HOUR)


# --- rate limit --------------------------------------------------------------------------


def test_the_configured_limit_refuses_a_burst_with_429_and_retry_after(
    runtime: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    with api_client(runtime, monkeypatch, RUNSTATE_API_RATE_LIMIT="2") as api:
        answers = [api.get("/v1/runs", headers=A) for _ in range(50)]  # 2 a second allowed: 50 cannot all pass
        other = api.get("/v1/runs", headers=B)
    statuses = [a.status_code for a in answers]
    assert statuses[:2] == [200, 200]  # a fresh budget always lets the first two through
    refused = answers[statuses.index(429)]
    assert refused.headers["retry-after"] == "1"
    assert refused.json() == {
        "error": {
            "code": "RATE_LIMIT_EXCEEDED",
            "message": "this token made 2 requests in the last 1 s, its limit; retry in 1 s",
        }
    }
    assert other.status_code == 200  # another token has a budget of its own


def test_api_processes_share_each_tokens_budget_through_redis(
    runtime: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    with (
        api_client(runtime, monkeypatch, rate_limit=_limit(runtime, 2)) as first,
        api_client(runtime, monkeypatch, rate_limit=_limit(runtime, 2)) as second,
    ):
        assert [first.get("/v1/runs", headers=A).status_code for _ in range(2)] == [200, 200]
        refused = second.get("/v1/runs", headers=A)
        assert (refused.status_code, refused.json()["error"]["code"]) == (429, "RATE_LIMIT_EXCEEDED")
        assert 1 <= int(refused.headers["retry-after"]) <= HOUR
        assert second.get("/v1/runs", headers=B).status_code == 200


def test_open_routes_need_no_token_and_are_never_limited(runtime: Runtime, monkeypatch: pytest.MonkeyPatch) -> None:
    with api_client(runtime, monkeypatch, rate_limit=_limit(runtime, 1)) as api:
        assert api.get("/v1/runs", headers=A).status_code == 200
        assert api.get("/v1/runs", headers=A).status_code == 429
        for _ in range(3):
            assert (api.get("/healthz").json(), api.get("/healthz", headers=A).status_code) == ({"status": "ok"}, 200)
            assert api.get("/openapi.json", headers=A).json()["info"]["title"] == "runstate"


def test_requests_with_an_unknown_token_do_not_spend_a_known_tokens_budget(
    runtime: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    with api_client(runtime, monkeypatch, rate_limit=_limit(runtime, 1)) as api:
        assert [api.get("/v1/runs", headers={"authorization": "Bearer x"}).status_code for _ in range(3)] == [401] * 3
        assert api.get("/v1/runs", headers=A).status_code == 200


# --- the error shape ---------------------------------------------------------------------


@pytest.fixture
def api(runtime: Runtime, monkeypatch: pytest.MonkeyPatch) -> Iterator[TestClient]:
    with api_client(runtime, monkeypatch, rate_limit=_limit(runtime, 1_000)) as client:
        yield client


EVERY_ERROR: list[tuple[str, str, dict[str, Any], int, str]] = [
    (
        "POST",
        "/v1/webhooks",
        {"content": b"{", "headers": {**A, "content-type": "application/json"}},
        400,
        "INVALID_INPUT",
    ),
    ("GET", "/v1/runs", {"headers": {"authorization": "Bearer nope"}}, 401, "AUTHORIZATION_ERROR"),
    ("GET", "/v1/run/nowhere", {"headers": A}, 404, "RESOURCE_NOT_FOUND"),
    ("GET", "/v1/run/r1", {"headers": B}, 404, "RESOURCE_NOT_FOUND"),
    ("GET", "/nowhere", {}, 404, "RESOURCE_NOT_FOUND"),
    ("PUT", "/v1/runs", {"headers": A}, 405, "INVALID_INPUT"),
    ("POST", "/v1/events", {"content": b"[" + b"{}," * 400_000 + b"{}]", "headers": A}, 413, "INVALID_INPUT"),
    ("GET", "/v1/runs", {"params": {"limit": 0}, "headers": A}, 422, "INVALID_INPUT"),
    ("GET", "/v1/runs/r1/steps", {"params": {"format": "refactor"}, "headers": A}, 422, "INVALID_INPUT"),
]


@pytest.mark.parametrize(
    ("method", "path", "request_args", "status", "code"),
    EVERY_ERROR,
    ids=["malformed", "token", "missing", "others", "route", "method", "size", "param", "format"],
)
def test_each_error_answers_its_code_in_the_one_shape(
    api: TestClient, runtime: Runtime, method: str, path: str, request_args: dict[str, Any], status: int, code: str
) -> None:
    open_run(api, runtime)
    answer = api.request(method, path, **request_args)
    assert answer.status_code == status
    assert list(answer.json()) == ["error"]
    assert list(answer.json()["error"]) == ["code", "message"]
    assert answer.json()["error"]["code"] == code
    assert answer.json()["error"]["message"]


def test_a_401_asks_for_a_bearer_token(api: TestClient) -> None:
    answer = api.get("/v1/webhooks")
    assert (answer.status_code, answer.headers["www-authenticate"], answer.json()) == (
        401,
        "Bearer",
        {"error": {"code": "AUTHORIZATION_ERROR", "message": "a valid Bearer token is required"}},
    )


def test_unknown_routes_and_methods_answer_in_the_error_shape(api: TestClient) -> None:
    missing, wrong_method = api.get("/v2/anything"), api.put("/v1/runs", headers=A)
    assert (missing.status_code, missing.json()) == (
        404,
        {"error": {"code": "RESOURCE_NOT_FOUND", "message": "Not Found"}},
    )
    assert (wrong_method.status_code, wrong_method.headers["allow"], wrong_method.json()) == (
        405,
        "GET",
        {"error": {"code": "INVALID_INPUT", "message": "Method Not Allowed"}},
    )


def test_a_crash_is_500_internal_error_without_a_stack_trace(api: TestClient, monkeypatch: pytest.MonkeyPatch) -> None:
    def crash(run_id: str) -> None:
        raise RuntimeError("secret detail of a bug")

    monkeypatch.setattr(api.app.state.runtime.store, "get", crash)
    answer = api.get("/v1/run/r1", headers=A)
    assert (answer.status_code, answer.json()) == (
        500,
        {"error": {"code": "INTERNAL_ERROR", "message": "an unexpected error occurred"}},
    )
    assert "secret detail" not in answer.text
    assert "Traceback" not in answer.text
