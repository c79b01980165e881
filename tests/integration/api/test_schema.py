"""The HTTP API against its own OpenAPI document: schemathesis finds no 5xx and no answer that
breaks the declared schema, and real answers (runs, steps in every format, history, webhooks)
match it too. Bounded and deterministic: a fixed seed, derandomized Hypothesis, no database."""

from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from tests.support.apikit import A, api_client, open_run, post_events
from tests.support.publishing import refs
from worker.api.app import create_app
from worker.runtime import Runtime
from worker.settings import Settings

# The event schema is large: its coverage phase alone would take most of the budget, so the
# events route gets fuzzed only. 25 examples per route keep the whole run to a few seconds.
CONFIG = """
seed = 20261125

[generation]
max-examples = 25

[[operations]]
include-path = "/v1/events"
phases.coverage.enabled = false
"""
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
    response_headers_conformance,
]


def _public(host: str, port: int) -> list[str]:
    return ["93.184.216.34"]  # no DNS: every generated webhook host is a public address


@pytest.fixture
def api_schema(runtime: Runtime, monkeypatch: pytest.MonkeyPatch) -> Any:
    monkeypatch.setenv("RUNSTATE_API_TOKENS", "tok_a:acct_a")
    app = create_app(Runtime(Settings(), runtime.redis), resolve=_public)
    return schemathesis.openapi.from_asgi("/openapi.json", app, config=schemathesis.Config.from_str(CONFIG))


schema = schemathesis.pytest.from_fixture("api_schema")


@schema.parametrize()
@settings(derandomize=True, database=None, deadline=None, suppress_health_check=list(HealthCheck))
def test_no_request_gets_a_5xx_or_an_answer_unlike_the_document(case: schemathesis.Case) -> None:
    case.call_and_validate(headers=A, checks=CHECKS)


def test_real_answers_match_the_document(runtime: Runtime, monkeypatch: pytest.MonkeyPatch) -> None:
    with api_client(runtime, monkeypatch) as api:
        document = schemathesis.openapi.from_dict(api.get("/openapi.json").json())
        open_run(api, runtime, "r1")
        open_run(api, runtime, "r2")
        post_events(
            api,
            {"id": "f", "type": "run.failed", "run_id": "r2", "data": {"error": {"code": "E", "message": "m"}}},
        )
        runtime.processor.drain(refs("r2", account="acct_a"))
        created = api.post("/v1/webhooks", json={"url": "https://h.example.com/"}, headers=A)
        answers = [
            ("/v1/events", "POST", api.post("/v1/events", json={"id": "x", "type": "nope", "run_id": "r"}, headers=A)),
            ("/v1/run/{run_id}", "GET", api.get("/v1/run/r1", headers=A)),
            ("/v1/run/{run_id}", "GET", api.get("/v1/run/r2", headers=A)),
            ("/v1/runs", "GET", api.get("/v1/runs", headers=A)),
            ("/v1/runs/{run_id}/history", "GET", api.get("/v1/runs/r1/history", headers=A)),
            ("/v1/webhooks", "POST", created),
            ("/v1/webhooks", "GET", api.get("/v1/webhooks", headers=A)),
            ("/v1/run/{run_id}/cancel", "POST", api.post("/v1/run/r1/cancel", headers=A)),
            ("/v1/run/{run_id}/cancel", "POST", api.post("/v1/run/r2/cancel", headers=A)),
            ("/v1/runs/{run_id}", "DELETE", api.delete("/v1/runs/r2", headers=A)),
            ("/healthz", "GET", api.get("/healthz")),
        ]
        for fmt in ("azure", "letta", "native"):
            answers.append(("/v1/runs/{run_id}/steps", "GET", api.get(f"/v1/runs/r1/steps?format={fmt}", headers=A)))
            answers.append(
                ("/v1/runs/{run_id}/steps/{step_id}", "GET", api.get(f"/v1/runs/r1/steps/s1?format={fmt}", headers=A))
            )
    assert [a.status_code for _, _, a in answers] == [400, 200, 200, 200, 200, 201, 200, 202, 409, 204, 200] + [200] * 6
    for path, method, answer in answers:
        document[path][method].validate_response(answer)  # raises naming what differs
