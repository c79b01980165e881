"""Fixtures of the integration tests: a real redis-server on a free port (never a user's 6379),
and a Runtime on it. Helpers to run real workers are in tests/support/processes.py."""

from collections.abc import Iterator

import pytest
from pytest_redis import factories
from redis import Redis

from worker.runtime import Runtime
from worker.settings import Settings

redis_server = factories.redis_proc(port=None, save="")
redis_client = factories.redisdb("redis_server", decode=False)


@pytest.fixture
def redis_url(redis_server: object, redis_client: Redis) -> str:
    """The URL of the test server; its data is flushed after each test by pytest-redis."""
    return f"redis://{redis_server.host}:{redis_server.port}/0"  # type: ignore[attr-defined]


@pytest.fixture
def runtime(redis_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[Runtime]:
    monkeypatch.setenv("REDIS_URL", redis_url)
    made = Runtime.connect(Settings())
    yield made
    made.redis.close()  # every pooled connection, whichever thread opened it
