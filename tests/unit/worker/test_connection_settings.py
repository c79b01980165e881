"""REDIS_URL: one server or the sentinels of a service; an empty one refused, never localhost."""

import pytest
from pydantic import ValidationError
from redis.sentinel import SentinelConnectionPool

from worker.settings import SentinelUrl, Settings, parse_sentinel_url
from worker.store.connection import connect


def _settings(monkeypatch: pytest.MonkeyPatch, url: str) -> Settings:
    monkeypatch.setenv("REDIS_URL", url)
    return Settings()


def test_a_sentinel_url_names_every_sentinel_the_service_the_database_and_the_password() -> None:
    parsed = parse_sentinel_url("redis+sentinel://:s3cret@10.0.0.1:26379,[::1]:26380,sentinel-c:26381/jobs/2")
    assert parsed == SentinelUrl(
        (("10.0.0.1", 26379), ("::1", 26380), ("sentinel-c", 26381)), "jobs", 2, None, "s3cret"
    )
    assert "s3cret" not in repr(parsed)


@pytest.mark.parametrize(
    ("url", "problem"),
    [
        ("", "REDIS_URL is empty"),
        ("   ", "REDIS_URL is empty"),
        ("http://localhost:6379", "scheme 'http' is not one of"),
        ("redis+sentinel://127.0.0.1:26379", "names no service"),
        ("redis+sentinel://127.0.0.1/mymaster", "sentinel '127.0.0.1' is not HOST:PORT"),
        ("redis+sentinel://127.0.0.1:26379/mymaster/zero", "database 'zero' is not a number"),
    ],
)
def test_a_bad_redis_url_is_refused_with_what_to_write(monkeypatch: pytest.MonkeyPatch, url: str, problem: str) -> None:
    with pytest.raises(ValidationError, match=problem):
        _settings(monkeypatch, url)


def test_an_unset_redis_url_means_localhost_and_an_ordinary_connection(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("REDIS_URL", raising=False)
    settings = Settings()
    assert (settings.effective_redis_url, settings.sentinel()) == ("redis://localhost:6379/0", None)


def test_a_sentinel_url_connects_through_redis_pys_sentinel_pool(monkeypatch: pytest.MonkeyPatch) -> None:
    client = connect(_settings(monkeypatch, "redis+sentinel://:pw@127.0.0.1:1,127.0.0.1:2/jobs/3"))
    pool = client.connection_pool
    assert isinstance(pool, SentinelConnectionPool)
    assert (pool.service_name, pool.is_master) == ("jobs", True)
    assert (pool.connection_kwargs["db"], pool.connection_kwargs["password"]) == (3, "pw")


def test_replica_acks_are_bounded(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RUNSTATE_REPLICA_ACKS", "-1")
    with pytest.raises(ValidationError, match="replica_acks"):
        Settings()
