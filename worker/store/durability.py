"""What a Redis server may lose, read from INFO and CONFIG and said once at worker start."""

from dataclasses import dataclass

import structlog
from redis import Redis
from redis.exceptions import RedisError

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
