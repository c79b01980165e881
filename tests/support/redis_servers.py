"""redis-server processes a test owns, so it can stop, kill, fill or restart them on the same
port (the pytest-redis fixture owns its server, and flushes it after each test): one server with
its data on disk, and a Sentinel group (a primary, a replica and three sentinels) for failover
tests. Free ports only, never 6379."""

import contextlib
import shutil
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path

from redis import Redis
from redis.exceptions import RedisError

from tests.support.loopback import free_port
from tests.support.processes import wait_until

SERVICE = "runstate"


def redis_server_binary() -> str:
    found = shutil.which("redis-server")
    assert found is not None, "redis-server is not installed"
    return found


class RedisServer:
    """One redis-server with an append-only file synced on every write in `directory`: SIGKILL
    loses nothing it acknowledged, and a restart on the same port finds everything again."""

    def __init__(self, directory: Path, port: int | None = None, args: tuple[str, ...] = ()) -> None:
        self.directory, self.port, self.args = directory, port or free_port(), args
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def client(self) -> Redis:
        return Redis(port=self.port, socket_timeout=5)

    def command(self) -> list[str]:
        return [
            redis_server_binary(),
            *("--port", str(self.port), "--bind", "127.0.0.1", "--dir", str(self.directory)),
            *("--appendonly", "yes", "--appendfsync", "always", "--save", ""),
            *self.args,
        ]

    def start(self) -> "RedisServer":
        self.directory.mkdir(parents=True, exist_ok=True)
        self.process = subprocess.Popen(self.command(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        wait_until(self.answers, timeout=20, every=0.02)
        return self

    def answers(self) -> bool:
        with contextlib.suppress(RedisError), self.client() as client:
            return bool(client.ping())
        return False

    def stop(self) -> None:
        """SIGTERM, as a supervisor stops Redis; returns once the process has exited (its port
        refuses connections). Nothing to do when it is not running."""
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(timeout=20)

    def kill(self) -> None:
        """SIGKILL: no shutdown of any kind."""
        assert self.process is not None
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=20)

    def shutdown(self) -> None:
        """Redis's own SHUTDOWN: clients are disconnected, the data set written out."""
        assert self.process is not None
        with contextlib.suppress(RedisError), self.client() as client:
            client.shutdown()
        self.process.wait(timeout=20)


@contextlib.contextmanager
def own_redis(directory: Path) -> Iterator[RedisServer]:
    """A started `RedisServer`, stopped when the block ends."""
    server = RedisServer(directory)
    try:
        yield server.start()
    finally:
        server.stop()


class SentinelGroup:
    """A primary, a replica of it, and three sentinels watching them with short timings, so a
    failover completes within a few seconds of the primary's death."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.primary = RedisServer(directory / "primary")
        self.replica = RedisServer(directory / "replica", args=("--replicaof", "127.0.0.1", str(self.primary.port)))
        self.sentinel_ports = [free_port() for _ in range(3)]
        self.sentinels: list[subprocess.Popen[bytes]] = []

    @property
    def url(self) -> str:
        hosts = ",".join(f"127.0.0.1:{port}" for port in self.sentinel_ports)
        return f"redis+sentinel://{hosts}/{SERVICE}/0"

    def start(self) -> "SentinelGroup":
        self.primary.start()
        self.replica.start()
        wait_until(lambda: self.replica.client().info("replication")["master_link_status"] == "up", timeout=20)
        for port in self.sentinel_ports:
            self.sentinels.append(self._start_sentinel(port))
        wait_until(self._sentinels_agree, timeout=20, every=0.05)
        return self

    def _start_sentinel(self, port: int) -> "subprocess.Popen[bytes]":
        config = self.directory / f"sentinel-{port}.conf"
        config.write_text(
            f"port {port}\nbind 127.0.0.1\ndir {self.directory}\n"
            f"sentinel monitor {SERVICE} 127.0.0.1 {self.primary.port} 2\n"
            f"sentinel down-after-milliseconds {SERVICE} 1000\n"
            f"sentinel failover-timeout {SERVICE} 3000\n"
            f"sentinel parallel-syncs {SERVICE} 1\n"
        )
        command = [redis_server_binary(), str(config), "--sentinel"]
        return subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def _sentinels_agree(self) -> bool:
        """Every sentinel answers, knows the replica and the two other sentinels."""
        for port in self.sentinel_ports:
            with contextlib.suppress(RedisError), Redis(port=port, socket_timeout=1) as sentinel:
                fields = sentinel.sentinel_master(SERVICE)
                if int(fields["num-slaves"]) < 1 or int(fields["num-other-sentinels"]) < 2:
                    return False
                continue
            return False
        return True

    def primary_port(self) -> int:
        """The port the sentinels name as primary now."""
        with Redis(port=self.sentinel_ports[0], socket_timeout=1) as sentinel:
            _, port = sentinel.sentinel_get_master_addr_by_name(SERVICE)
        return int(port)

    def stop(self) -> None:
        for process in self.sentinels:
            process.kill()
            process.wait(timeout=20)
        self.primary.stop()
        self.replica.stop()


@contextlib.contextmanager
def sentinel_group(directory: Path) -> Iterator[SentinelGroup]:
    group = SentinelGroup(directory)
    try:
        yield group.start()
    finally:
        group.stop()
