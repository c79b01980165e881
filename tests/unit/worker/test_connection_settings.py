"""REDIS_URL: one server or the sentinels of a service; an empty one refused, never localhost."""

import pytest
import structlog
from pydantic import ValidationError
from redis.exceptions import ConnectionError, OutOfMemoryError, ReadOnlyError, ResponseError
from redis.sentinel import SentinelConnectionPool

from worker.settings import SentinelUrl, Settings, parse_sentinel_url
from worker.store.connection import connect
from worker.store.outage import Outage, is_fault


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


@pytest.mark.parametrize(
    "error",
    [
        ConnectionError("refused"),
        ReadOnlyError("You can't write against a read only replica."),
        OutOfMemoryError("command not allowed when used memory > 'maxmemory'."),
        ResponseError("BUSY Redis is busy running a script."),
    ],
)
def test_faults_that_pass_are_told_from_bugs(error: Exception) -> None:
    assert is_fault(error)
    assert not is_fault(ResponseError("WRONGTYPE Operation against a key holding the wrong kind of value"))
    assert not is_fault(ValueError("a bug"))


def test_an_outage_is_logged_once_when_it_starts_and_once_when_it_ends_with_capped_waits() -> None:
    outage = Outage("sweeper", base=0.05, cap=2.0)
    with structlog.testing.capture_logs() as logged:
        waits = [outage.failed(ConnectionError("refused")) for _ in range(20)]
        outage.recovered()
        outage.recovered()
    assert [(line["event"], line["loop"]) for line in logged] == [
        ("redis.unavailable", "sweeper"),
        ("redis.available", "sweeper"),
    ]
    assert logged[0]["reason"] == "ConnectionError: refused"
    assert logged[1]["attempts"] == 20
    assert all(0 < wait <= 2.0 for wait in waits)
    assert max(waits) >= 1.0  # grown to the cap, never past it
    assert len(set(waits)) > 10  # jittered
