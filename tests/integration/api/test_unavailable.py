"""Redis trouble over HTTP, against a redis-server of the test's own that it stops or fills:
every route answers `503 SERVICE_UNAVAILABLE` with Retry-After and what is wrong, never 500,
with a rate limit set or not; `/healthz` fails as soon as Redis refuses writes; and all answer
again once Redis is back."""

from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from redis import Redis

from tests.support.apikit import A, api_client, open_run
from tests.support.redis_servers import RedisServer, own_redis
from worker.runtime import Runtime
from worker.settings import Settings

UNREACHABLE = {"error": {"code": "SERVICE_UNAVAILABLE", "message": "Redis is unreachable; retry in 5 s"}}
FULL = {
    "error": {
        "code": "SERVICE_UNAVAILABLE",
        "message": "Redis is out of memory (maxmemory) and refuses writes; retry in 5 s",
    }
}
EVENT = {"id": "e9", "type": "run.started", "run_id": "r9"}


@pytest.fixture
def server(tmp_path: Path) -> Iterator[RedisServer]:
    with own_redis(tmp_path) as started:
        yield started


@pytest.fixture(params=[None, "1000"], ids=["no-rate-limit", "rate-limit"])
def api(server: RedisServer, monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest) -> Iterator[TestClient]:
    monkeypatch.setenv("REDIS_URL", server.url)
    runtime = Runtime(Settings(), Redis.from_url(server.url))
    env = {"RUNSTATE_API_RATE_LIMIT": request.param} if request.param else {}
    with api_client(runtime, monkeypatch, **env) as client:
        open_run(client, runtime, "r1")
        yield client
    runtime.redis.close()


def _every_route(api: TestClient) -> list[tuple[int, str | None, object]]:
    answers = [
        api.get("/healthz"),
        api.get("/metrics"),
        api.get("/v1/runs", headers=A),
        api.get("/v1/run/r1", headers=A),
        api.get("/v1/runs/r1/steps", headers=A),
        api.post("/v1/events", json=EVENT, headers=A),
        api.post("/v1/run/r1/cancel", headers=A),
        api.post("/v1/webhooks", json={"url": "https://h.example.com/"}, headers=A),
        api.delete("/v1/runs/r1", headers=A),
    ]
    return [(a.status_code, a.headers.get("retry-after"), a.json()) for a in answers]


def test_a_stopped_redis_answers_503_with_retry_after_on_every_route(api: TestClient, server: RedisServer) -> None:
    server.stop()
    assert _every_route(api) == [(503, "5", UNREACHABLE)] * 9


def test_every_route_answers_again_once_redis_is_back(api: TestClient, server: RedisServer) -> None:
    server.stop()
    assert api.get("/v1/runs", headers=A).status_code == 503
    server.start()  # on the same port: the API's connections find it again by themselves
    assert [api.get("/healthz").status_code, api.get("/v1/runs", headers=A).status_code] == [200, 200]
    assert api.post("/v1/events", json=EVENT, headers=A).status_code == 202


def test_a_full_redis_refuses_writes_with_503_and_healthz_says_so(api: TestClient, server: RedisServer) -> None:
    admin = Redis(port=server.port)
    admin.config_set("maxmemory", 1)  # noeviction (the default): every write that may grow memory fails
    writes = [
        api.get("/healthz"),
        api.post("/v1/events", json=EVENT, headers=A),
        api.post("/v1/webhooks", json={"url": "https://h.example.com/"}, headers=A),
    ]
    assert [(w.status_code, w.headers["retry-after"], w.json()) for w in writes] == [(503, "5", FULL)] * 3
    admin.config_set("maxmemory", 0)
    assert api.get("/healthz").json() == {"status": "ok"}
    assert api.post("/v1/events", json=EVENT, headers=A).status_code == 202


def test_reads_of_a_full_redis_still_answer_without_a_rate_limit(
    server: RedisServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("REDIS_URL", server.url)
    runtime = Runtime(Settings(), Redis.from_url(server.url))
    with api_client(runtime, monkeypatch) as api:
        open_run(api, runtime, "r1")
        Redis(port=server.port).config_set("maxmemory", 1)
        assert api.get("/v1/run/r1", headers=A).json()["status"] == "running"
