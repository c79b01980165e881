"""The one place a Redis connection is made, from REDIS_URL: one server (`redis://`), or the
primary that Sentinel names (`redis+sentinel://`).

A Sentinel connection is redis-py's own (`Sentinel.master_for`): its pool asks the sentinels
for the primary's address whenever it opens a connection, and turns a `READONLY` answer (the
old primary, demoted to a replica) into a connection error that drops the connection. So after
a failover the next attempt of whichever loop failed (see `worker.store.outage`) reaches the
new primary, with no discovery of ours.
"""

from typing import Any

from redis import Redis
from redis.asyncio import Redis as AsyncRedis
from redis.asyncio.sentinel import Sentinel as AsyncSentinel
from redis.sentinel import Sentinel

from worker.settings import Settings

SENTINEL_TIMEOUT = 0.5  # seconds to wait for one sentinel before asking the next


def connect(settings: Settings, **options: Any) -> Redis:
    """A client on REDIS_URL's server; `options` are redis-py's connection options (timeouts)."""
    primary: Redis = _client(settings, Redis, Sentinel, options)
    return primary


def connect_async(settings: Settings, **options: Any) -> AsyncRedis:
    """The same, for asyncio (the webhook sender)."""
    primary: AsyncRedis = _client(settings, AsyncRedis, AsyncSentinel, options)
    return primary


def _client(settings: Settings, redis: Any, sentinel_class: Any, options: dict[str, Any]) -> Any:
    """redis-py's synchronous and asyncio clients take the same arguments: one server from the URL,
    or the primary Sentinel names."""
    sentinel = settings.sentinel()
    if sentinel is None:
        return redis.from_url(settings.effective_redis_url, **options)
    sentinels = sentinel_class(
        list(sentinel.sentinels),
        sentinel_kwargs={"socket_timeout": SENTINEL_TIMEOUT, "socket_connect_timeout": SENTINEL_TIMEOUT},
    )
    return sentinels.master_for(
        sentinel.service, db=sentinel.db, username=sentinel.username, password=sentinel.password, **options
    )
