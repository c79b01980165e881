"""What a Redis server may lose, read from INFO and CONFIG and said once at worker start."""

from dataclasses import dataclass

import structlog
from redis import Redis
from redis.exceptions import RedisError

from worker.store import keys

log = structlog.get_logger("runstate.durability")


@dataclass(frozen=True, slots=True)
class Durability:
    eviction_policy: str | None  # None: not readable here
    appendonly: bool | None
    appendfsync: str | None
    rdb_saves: bool | None

    def warnings(self) -> list[str]:
        found = []
        if self.eviction_policy not in (None, "noeviction"):
            found.append(f"maxmemory-policy is {self.eviction_policy}: Redis may evict runs, inboxes and timers")
        if self.appendonly is False and self.rdb_saves is False:
            found.append("Redis persists nothing (no AOF, no RDB saves): a restart loses every run and queued event")
        elif self.appendonly is False:
            found.append("appendonly is off: a crash loses what changed since the last RDB save")
        elif self.appendfsync not in (None, "always"):
            found.append(f"appendfsync is {self.appendfsync}: a crash of the host may lose up to a second")
        return found


def inspect(redis: Redis) -> Durability:
    """Read what the server allows us to; commands it refuses (managed Redis, fakeredis) leave None."""
    policy = appendfsync = None
    appendonly = saves = None
    try:
        config = redis.config_get("maxmemory-policy")
        policy = config.get("maxmemory-policy")
        appendfsync = redis.config_get("appendfsync").get("appendfsync")
    except (RedisError, AttributeError):
        pass
    try:
        persistence = redis.info("persistence")
        appendonly = bool(int(persistence.get("aof_enabled", 0)))
        save = redis.config_get("save").get("save") if policy is not None else None
        saves = None if save is None else bool(str(save).strip())
    except (RedisError, AttributeError, ValueError):
        pass
    return Durability(policy, appendonly, appendfsync, saves)


def warn_at_start(redis: Redis) -> list[str]:
    found = inspect(redis).warnings()
    for warning in found:
        log.warning("redis.durability", problem=warning)
    return found


class NotReplicated(Exception):
    """Raised by a publish when fewer than RUNSTATE_REPLICA_ACKS replicas confirmed its events
    within RUNSTATE_REPLICA_ACK_TIMEOUT: they are on the primary, but a failover now could lose
    them. Publishing the same events again is safe (event ids dedupe)."""

    def __init__(self, wanted: int, confirmed: int, timeout: float) -> None:
        self.wanted, self.confirmed, self.timeout = wanted, confirmed, timeout
        super().__init__(
            f"only {confirmed} of the {wanted} replicas RUNSTATE_REPLICA_ACKS asks for confirmed the events "
            f"within {timeout:g} s: they are on the primary, but a failover could lose them; "
            "publish them again (event ids dedupe)"
        )


def confirm_replicas(redis: Redis, replicas: int, timeout: float) -> None:
    """Return once `replicas` replicas have every write acknowledged before this call, or raise
    NotReplicated. WAIT waits for its own connection's last write, so it follows a write of
    its own on that connection: the replication stream is ordered, so a replica that has it
    has every earlier write, whichever connection made them."""
    if replicas <= 0:
        return
    with redis.pipeline(transaction=False) as pipe:
        pipe.set(keys.PROBE, b"1", px=10_000)
        pipe.wait(replicas, max(1, int(timeout * 1000)))
        _, confirmed = pipe.execute()
    if int(confirmed) < replicas:
        raise NotReplicated(replicas, int(confirmed), timeout)
