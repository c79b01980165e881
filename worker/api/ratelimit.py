"""Requests per second per API token (RUNSTATE_API_RATE_LIMIT), counted in Redis.

The `limits` library's moving window: each allowed request is logged, by one Lua script, in a
short list per token, and a request is refused while the token already has `amount` requests
in the window. The count lives in Redis, so every API process shares each token's budget.
Tokens appear in keys only as a hash.
"""

import hashlib
import math
import time

from limits import RateLimitItemPerSecond
from limits.storage import RedisStorage
from limits.strategies import MovingWindowRateLimiter
from redis import Redis

from worker.store import keys


class RateLimit:
    """At most `amount` requests per token in any `seconds` (RUNSTATE_API_RATE_LIMIT: per 1 s)."""

    def __init__(self, redis: Redis, redis_url: str, amount: int, seconds: int = 1) -> None:
        storage = RedisStorage(redis_url, connection_pool=redis.connection_pool, key_prefix=keys.RATE_LIMIT)
        self.amount = amount
        self.seconds = seconds
        self._limiter = MovingWindowRateLimiter(storage)
        self._item = RateLimitItemPerSecond(amount, seconds, namespace="api")

    def hit(self, token: str) -> int | None:
        """Count one request; None when it is allowed, else the whole seconds to wait (Retry-After)."""
        who = hashlib.sha256(token.encode()).hexdigest()[:32]
        if self._limiter.hit(self._item, who):
            return None
        reset = self._limiter.get_window_stats(self._item, who).reset_time
        return max(1, math.ceil(reset - time.time()))
