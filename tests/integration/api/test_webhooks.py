"""Webhook subscriptions over HTTP: add, list and remove an account's own, checked like the CLI's."""

import re
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from tests.support.apikit import A, B, api_client
from worker.api import webhooks as api_webhooks
from worker.runtime import Runtime
from worker.store.subscriptions import Subscriptions
from worker.webhooks.ssrf import UnsafeTarget, check_url

SECRET = "whsec_" + "QUJDREVGR0hJSktMTU5PUFFSU1RVVldY"  # base64 of 24 bytes


@pytest.fixture
def api(runtime: Runtime, monkeypatch: pytest.MonkeyPatch) -> Iterator[TestClient]:
    with api_client(runtime, monkeypatch) as client:
        yield client


def _masked(created: dict[str, object]) -> dict[str, object]:
    return created | {"secret": "whsec_…" + str(created["secret"])[-4:]}


def test_a_webhook_is_created_with_its_whole_secret_shown_only_in_that_answer(api: TestClient) -> None:
    answer = api.post(
        "/v1/webhooks", json={"url": "https://hooks.example.com/runstate", "events": ["run.completed"]}, headers=A
    )
    assert answer.status_code == 201
    created = answer.json()
    assert re.fullmatch(r"sub_[0-9a-f]{16}", created["id"])
    assert re.fullmatch(r"whsec_[A-Za-z0-9+/]{32}", created["secret"])
    assert created == {
        "id": created["id"],
        "account": "acct_a",
        "url": "https://hooks.example.com/runstate",
        "events": ["run.completed"],
        "enabled": True,
        "disabled_reason": None,
        "failing_since": None,
        "created_at": created["created_at"],
        "secret": created["secret"],
    }
    assert api.get("/v1/webhooks", headers=A).json() == {"object": "list", "data": [_masked(created)]}


def test_a_given_secret_and_the_default_filter_are_kept(api: TestClient, runtime: Runtime) -> None:
    created = api.post("/v1/webhooks", json={"url": "https://93.184.216.34/h", "secret": SECRET}, headers=A).json()
    assert (created["events"], created["secret"]) == (["*"], SECRET)
    stored = Subscriptions(runtime.redis).get(created["id"])
    assert stored is not None
    assert (stored.account, stored.secret) == ("acct_a", SECRET)


def test_each_account_sees_and_removes_only_its_own_webhooks(api: TestClient) -> None:
    ours = api.post("/v1/webhooks", json={"url": "https://a.example.com/h"}, headers=A).json()
    theirs = api.post("/v1/webhooks", json={"url": "https://b.example.com/h"}, headers=B).json()
    assert api.get("/v1/webhooks", headers=A).json()["data"] == [_masked(ours)]
    assert api.get("/v1/webhooks", headers=B).json()["data"] == [_masked(theirs)]
    refused = api.delete(f"/v1/webhooks/{ours['id']}", headers=B)
    assert (refused.status_code, refused.json()) == (
        404,
        {"error": {"code": "RESOURCE_NOT_FOUND", "message": f"subscription {ours['id']!r} not found"}},
    )
    assert api.get("/v1/webhooks", headers=A).json()["data"] == [_masked(ours)]
    removed = api.delete(f"/v1/webhooks/{ours['id']}", headers=A)
    assert (removed.status_code, removed.content) == (204, b"")
    assert api.get("/v1/webhooks", headers=A).json()["data"] == []
    assert api.delete(f"/v1/webhooks/{ours['id']}", headers=A).status_code == 404
    assert api.get("/v1/webhooks", headers=B).json()["data"] == [_masked(theirs)]


def test_a_private_target_is_refused_naming_the_reason_as_the_cli_does(api: TestClient, runtime: Runtime) -> None:
    url = "http://169.254.169.254/latest/meta-data"
    with pytest.raises(UnsafeTarget) as refusal:
        check_url(url, allow_private=False)
    answer = api.post("/v1/webhooks", json={"url": url}, headers=A)
    assert (answer.status_code, answer.json()) == (
        400,
        {"error": {"code": "INVALID_INPUT", "message": f"refused: {refusal.value.reason}"}},
    )
    assert list(Subscriptions(runtime.redis).all()) == []


def test_a_host_that_resolves_to_a_loopback_address_is_refused(
    runtime: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    with api_client(runtime, monkeypatch, resolve=lambda host, port: ["127.0.0.1"]) as api:
        answer = api.post("/v1/webhooks", json={"url": "https://rebind.example.com/h"}, headers=A)
    assert (answer.status_code, answer.json()["error"]["code"]) == (400, "INVALID_INPUT")
    assert answer.json()["error"]["message"].startswith("refused: https://rebind.example.com resolves to 127.0.0.1")


def test_allow_private_lets_a_loopback_target_in(runtime: Runtime, monkeypatch: pytest.MonkeyPatch) -> None:
    with api_client(runtime, monkeypatch, RUNSTATE_WEBHOOK_ALLOW_PRIVATE="1") as api:
        answer = api.post("/v1/webhooks", json={"url": "http://127.0.0.1:9000/h"}, headers=A)
    assert (answer.status_code, answer.json()["url"]) == (201, "http://127.0.0.1:9000/h")


@pytest.mark.parametrize(
    ("body", "status", "names"),
    [
        ({"url": "https://h.example.com/", "events": ["job.*"]}, 400, "events"),
        ({"url": "https://h.example.com/", "secret": "not-a-secret"}, 400, "secret"),
        ({"url": "ftp://h.example.com/"}, 400, "only http and https"),
        ({"events": ["*"]}, 422, "url"),
        ({"url": "https://h.example.com/", "events": []}, 422, "events"),
        ({"url": "https://h.example.com/", "colour": "red"}, 422, "colour"),
        ({"url": "https://h.example.com/" + "x" * 2048}, 422, "url"),
        ("not json", 400, "JSON"),
    ],
    ids=["bad-filter", "bad-secret", "bad-scheme", "no-url", "no-events", "unknown-field", "long-url", "not-json"],
)
def test_a_refused_webhook_names_the_rule(api: TestClient, body: object, status: int, names: str) -> None:
    if isinstance(body, str):
        answer = api.post("/v1/webhooks", content=body, headers={**A, "content-type": "application/json"})
    else:
        answer = api.post("/v1/webhooks", json=body, headers=A)
    assert (answer.status_code, answer.json()["error"]["code"]) == (status, "INVALID_INPUT")
    assert names in answer.json()["error"]["message"]


def test_an_account_may_hold_only_so_many_webhooks(api: TestClient, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(api_webhooks, "MAX_PER_ACCOUNT", 2)
    for n in range(2):
        assert api.post("/v1/webhooks", json={"url": f"https://h{n}.example.com/"}, headers=A).status_code == 201
    refused = api.post("/v1/webhooks", json={"url": "https://h2.example.com/"}, headers=A)
    assert (refused.status_code, refused.json()) == (
        409,
        {"error": {"code": "CONFLICT", "message": "the account has 2 subscriptions; at most 2 are allowed"}},
    )
    assert api.post("/v1/webhooks", json={"url": "https://h2.example.com/"}, headers=B).status_code == 201
