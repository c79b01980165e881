"""Redis faults as a real redis-server raises them, on a server of the test's own put into each
state: full (a plain write, a write inside a script, a transaction), short of replicas,
read-only, without its primary, unable to persist, busy with a script. Each is a fault with its
reason; an error of the script itself is not."""

import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from redis import Redis
from redis.exceptions import RedisError, ResponseError

from tests.support.loopback import free_port
from tests.support.processes import wait_until
from tests.support.redis_servers import RedisServer, own_redis
from worker.store.outage import is_fault, probe, reason

SET = "return redis.call('set', KEYS[1], 'v')"


@pytest.fixture
def server(tmp_path: Path) -> Iterator[RedisServer]:
    with own_redis(tmp_path) as started:
        yield started


@pytest.fixture
def redis(server: RedisServer) -> Iterator[Redis]:
    with server.client() as client:
        yield client


def _raised(call: Callable[[], object]) -> RedisError:
    with pytest.raises(RedisError) as raised:
        call()
    return raised.value


def _in_a_transaction(redis: Redis) -> None:
    with redis.pipeline(transaction=True) as pipe:
        pipe.incr("n").set("k", "v").execute()


@pytest.mark.parametrize("write", [probe, lambda r: r.eval(SET, 1, "k"), _in_a_transaction])
def test_a_full_redis_refuses_a_write_plain_in_a_script_or_in_a_transaction_as_a_fault(
    redis: Redis, write: Callable[[Redis], object]
) -> None:
    redis.config_set("maxmemory-policy", "noeviction")
    redis.config_set("maxmemory", 1)
    error = _raised(lambda: write(redis))
    assert (is_fault(error), reason(error)) == (True, "Redis is out of memory (maxmemory) and refuses writes")


@pytest.mark.parametrize("write", [probe, lambda r: r.eval(SET, 1, "k"), _in_a_transaction])
def test_a_redis_short_of_replicas_refuses_a_write_as_a_fault(redis: Redis, write: Callable[[Redis], object]) -> None:
    redis.config_set("min-replicas-to-write", 1)
    error = _raised(lambda: write(redis))
    assert (is_fault(error), reason(error)) == (True, "Redis has too few replicas to take writes")


def test_a_replica_refuses_a_write_as_a_fault_and_without_its_primary_a_read_too(redis: Redis) -> None:
    redis.replicaof("127.0.0.1", free_port())  # a primary nobody runs
    written = _raised(lambda: probe(redis))
    assert (is_fault(written), reason(written)) == (True, "Redis is a read-only replica and refuses writes")
    redis.config_set("replica-serve-stale-data", "no")
    read = _raised(lambda: redis.get("k"))
    assert (is_fault(read), reason(read)) == (True, "Redis has lost its primary")


def test_a_redis_that_cannot_save_refuses_a_write_as_a_fault(tmp_path: Path) -> None:
    server = RedisServer(tmp_path / "gone", args=("--appendonly", "no")).start()
    try:
        with server.client() as redis:
            server.directory.rmdir()  # its snapshot cannot be written: its directory is no more
            redis.config_set("save", "3600 1")  # with a save point, a failed snapshot stops writes
            redis.bgsave()
            wait_until(lambda: redis.info("persistence")["rdb_last_bgsave_status"] == "err", timeout=20, every=0.01)
            error = _raised(lambda: probe(redis))
            redis.config_set("save", "")  # else SIGTERM would try to save once more, and refuse to exit
    finally:
        server.stop()
    assert (is_fault(error), reason(error)) == (True, "Redis cannot persist its data and refuses writes")


def test_a_redis_busy_running_a_script_is_a_fault(redis: Redis, server: RedisServer) -> None:
    redis.config_set("busy-reply-threshold", 10)  # milliseconds a script runs before others are told BUSY
    ended: list[RedisError] = []
    looping = threading.Thread(target=_loop_until_killed, args=(server, ended))
    looping.start()
    errors: list[RedisError] = []
    try:
        wait_until(lambda: _refused(redis, errors), timeout=20, every=0.01)
    finally:
        wait_until(lambda: _killed(redis), timeout=20, every=0.01)
        looping.join(timeout=20)
    assert (is_fault(errors[0]), reason(errors[0])) == (True, "Redis is busy running a script")
    assert "killed by user" in str(ended[0])  # the script ran until SCRIPT KILL, no longer


def _loop_until_killed(server: RedisServer, ended: list[RedisError]) -> None:
    with server.client() as client:
        try:
            client.eval("while true do end", 0)
        except RedisError as error:
            ended.append(error)


def _refused(redis: Redis, errors: list[RedisError]) -> bool:
    try:
        redis.ping()
    except RedisError as error:
        errors.append(error)
        return True
    return False


def _killed(redis: Redis) -> bool:
    try:
        return bool(redis.script_kill())
    except ResponseError:  # NOTBUSY: the script has not started yet
        return False


def test_an_error_of_the_script_itself_is_not_a_fault(redis: Redis) -> None:
    redis.rpush("k", "a list")
    error = _raised(lambda: redis.eval(SET.replace("set", "incr"), 1, "k"))
    assert (is_fault(error), reason(error)) == (False, None)


@pytest.mark.parametrize("password", ["wrong", None])
def test_credentials_redis_refuses_are_a_fault_told_with_the_fix(
    redis: Redis, server: RedisServer, password: str | None
) -> None:
    redis.config_set("requirepass", "s3cr3t")
    with Redis(host="127.0.0.1", port=server.port, password=password) as client:
        error = _raised(lambda: probe(client))
    told = "Redis refused the credentials: set the user and password in REDIS_URL (redis://USER:PASSWORD@host:port)"
    assert (is_fault(error), reason(error)) == (True, told)
