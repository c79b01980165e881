"""Small edges of the API's reads: a step cursor that names no step is a 400 like a run cursor
(never a silent restart at page 1), and a deleted run answers 410 RESOURCE_DELETED."""

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from tests.support.apikit import A, api_client, open_run
from worker.runtime import Runtime


@pytest.fixture
def api(runtime: Runtime, monkeypatch: pytest.MonkeyPatch) -> Iterator[TestClient]:
    with api_client(runtime, monkeypatch) as client:
        open_run(client, runtime)
        yield client


def test_an_unknown_step_cursor_is_a_400_naming_it(api: TestClient) -> None:
    answer = api.get("/v1/runs/r1/steps", params={"after": "nope"}, headers=A)
    assert (answer.status_code, answer.json()) == (
        400,
        {"error": {"code": "INVALID_INPUT", "message": "after: 'nope' is not one of the run's steps listed here"}},
    )


def test_a_known_step_cursor_still_pages(api: TestClient) -> None:
    answer = api.get("/v1/runs/r1/steps", params={"after": "s1"}, headers=A).json()
    assert ([s["id"] for s in answer["data"]], answer["has_more"]) == (["s2"], False)


def test_an_unknown_run_cursor_is_a_400_too(api: TestClient) -> None:
    answer = api.get("/v1/runs", params={"after": "nope"}, headers=A)
    assert (answer.status_code, answer.json()["error"]["code"]) == (400, "INVALID_INPUT")


def test_a_deleted_run_answers_410_and_a_missing_one_404(api: TestClient) -> None:
    assert api.delete("/v1/runs/r1", headers=A).status_code == 204
    deleted, missing = api.get("/v1/run/r1", headers=A), api.get("/v1/run/r0", headers=A)
    assert (deleted.status_code, deleted.json()) == (
        410,
        {"error": {"code": "RESOURCE_DELETED", "message": "run 'r1' was deleted"}},
    )
    assert (missing.status_code, missing.json()["error"]["code"]) == (404, "RESOURCE_NOT_FOUND")
