"""What the HTTP API tests share: the app on the test redis-server with two tokens of two
accounts, and runs published through it and applied as a worker would."""

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from fastapi.testclient import TestClient

from tests.support.publishing import refs
from worker.api.app import create_app
from worker.runtime import Runtime
from worker.settings import Settings

A = {"authorization": "Bearer tok_a"}  # account acct_a
B = {"authorization": "Bearer tok_b"}  # account acct_b


def public_resolver(host: str, port: int) -> list[str]:
    """Every webhook host resolves to one public address: no DNS in tests."""
    return ["93.184.216.34"]


@contextmanager
def api_client(runtime: Runtime, monkeypatch: pytest.MonkeyPatch, **env_and_app: Any) -> Iterator[TestClient]:
    """A TestClient on a fresh app; `RUNSTATE_*` keywords set the environment, others go to `create_app`."""
    monkeypatch.setenv("RUNSTATE_API_TOKENS", "tok_a:acct_a,tok_b:acct_b")
    for name, value in [(k, v) for k, v in env_and_app.items() if k.startswith("RUNSTATE_")]:
        monkeypatch.setenv(name, value)
    app_args = {k: v for k, v in env_and_app.items() if not k.startswith("RUNSTATE_")}
    app_args.setdefault("resolve", public_resolver)
    app = create_app(Runtime(Settings(), runtime.redis), **app_args)
    with TestClient(app, raise_server_exceptions=False) as client:
        yield client


def post_events(api: TestClient, *events: dict[str, Any], headers: dict[str, str] = A) -> None:
    answer = api.post("/v1/events", json=list(events), headers=headers)
    assert (answer.status_code, answer.json()["rejected"]) == (202, [])


def open_run(api: TestClient, runtime: Runtime, run_id: str = "r1", headers: dict[str, str] = A) -> None:
    """A running run of the token's account with one step completed and one in progress, applied."""
    post_events(
        api,
        {"id": "e1", "type": "run.started", "run_id": run_id, "data": {"runnable_id": "rbl"}},
        {"id": "e2", "type": "step.created", "run_id": run_id, "step_id": "s1", "data": {"model": "gpt-4o"}},
        {
            "id": "e3",
            "type": "step.completed",
            "run_id": run_id,
            "step_id": "s1",
            "data": {"usage": {"prompt_tokens": 10, "completion_tokens": 2}, "cost_usd": 0.001},
        },
        {"id": "e4", "type": "step.created", "run_id": run_id, "step_id": "s2"},
        headers=headers,
    )
    runtime.processor.drain(refs(run_id, account="acct_a"))
