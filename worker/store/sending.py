"""What the delivery process reads and writes, on an asyncio Redis client, in few round trips.

One script claims due deliveries with their records and the subscriptions' version
(`lua/claim_webhooks.lua`); another writes many results at once, atomically
(`lua/settle_webhooks.lua`): one command however many there are, which costs the client a
fifth of what a transaction of two to four commands per delivery did.
"""

from collections import Counter
from dataclasses import dataclass
from typing import Any

from redis.asyncio import Redis

from worker.store import keys
from worker.store.lua import source
from worker.store.outbox import WEBHOOK_COUNTER, Delivery, DeliveryState
from worker.store.replies import as_text
from worker.store.subscriptions import Subscription, changed, stage_save

# Where a legacy timer member names its subscription: `webhook:msg_<subscription id>_<run>_...`
# (statemachine.webhooks.delivery_id); a Lua pattern (the prefix has no magic characters),
# held against delivery_id by a test.
SUBSCRIPTION_IN_LEGACY_TIMER = "^" + keys.LEGACY_TIMER_PREFIX + "msg_(sub_[^_]+)_"


@dataclass(frozen=True, slots=True)
class Room:
    """How many more of a subscription's deliveries this process may claim to start at once, and
    to queue behind its busy slots; how far to push its place among the ready back once it has
    no room left (ms; 0 leaves it due)."""

    start: int
    queue: int = 0
    defer_ms: int = 0


@dataclass(frozen=True, slots=True)
class Claimed:
    now: int  # Redis time of the claim, ms
    version: bytes  # of the subscriptions
    earliest: int | None  # the earliest timer left (ms), claimed ones included
    deliveries: list[tuple[str, str, Delivery | None]]  # (subscription id, delivery id, record or None: gone)


@dataclass(frozen=True, slots=True)
class Retry:
    delivery: Delivery
    due: int
    outcome: str | None


@dataclass(frozen=True, slots=True)
class Finish:
    delivery: Delivery
    outcome: str | None


@dataclass(frozen=True, slots=True)
class Forget:
    """A timer whose delivery is gone or no longer pending."""

    subscription_id: str
    delivery_id: str


Result = Retry | Finish | Forget


class Sending:
    def __init__(self, redis: Redis, retention: int) -> None:
        self.redis = redis
        self.retention = retention
        self._claim = redis.register_script(source("claim_webhooks"))
        self._settle = redis.register_script(source("settle_webhooks"))
        self._by_id: dict[str, Subscription] = {}
        self._read_at: bytes | None = None

    async def claim(self, limit: int, lease_ms: int, scan: int, rooms: dict[str, Room], room: Room) -> Claimed:
        """Up to `limit` due deliveries of the first `scan` subscriptions with some due, each
        pushed back by the lease: of subscription s, `rooms[s]` (else `room`) — first those that
        can start at once, across them all, then those that may queue."""
        args: list[Any] = [
            lease_ms,
            limit,
            scan,
            room.start,
            room.queue,
            room.defer_ms,
            keys.webhook_timers(""),
            keys.delivery(""),
            keys.LEGACY_TIMER_PREFIX,
            SUBSCRIPTION_IN_LEGACY_TIMER,
        ]
        for subscription_id, its in rooms.items():
            args.extend((subscription_id, its.start, its.queue, its.defer_ms))
        script_keys = [keys.WEBHOOK_READY, keys.SUBSCRIPTIONS_VERSION, keys.LEGACY_WEBHOOK_TIMERS]
        reply = await self._claim(keys=script_keys, args=args)
        now, version, earliest, rest = int(reply[0]), reply[1] or b"", reply[2], reply[3:]
        deliveries = [
            (
                as_text(rest[i]),
                as_text(rest[i + 1]),
                None if not rest[i + 2] else Delivery.model_validate_json(rest[i + 2]),
            )
            for i in range(0, len(rest), 3)
        ]
        return Claimed(now, version, None if not earliest else int(float(earliest)), deliveries)

    async def subscriptions(self, version: bytes) -> dict[str, Subscription]:
        """Every subscription by id, read again only when `version` moved since the last read."""
        if self._read_at != version:
            raws = await self.redis.hvals(keys.SUBSCRIPTIONS)
            self._by_id = {s.id: s for s in map(Subscription.model_validate_json, raws)}
            self._read_at = version
        return self._by_id

    async def write(self, results: list[Result]) -> None:
        """Every result at once, atomically; one increment per outcome, not per delivery."""
        outcomes: Counter[str] = Counter()
        entries: list[Any] = []
        for result in results:
            if isinstance(result, Forget):
                entries.extend(("forget", result.subscription_id, result.delivery_id, "", 0))
                continue
            delivery = result.delivery
            if isinstance(result, Retry):
                entries.extend(("retry", delivery.subscription_id, delivery.id, delivery.to_json(), result.due))
            else:
                kind = "dead" if delivery.state is DeliveryState.DEAD else "finish"
                entries.extend((kind, delivery.subscription_id, delivery.id, delivery.to_json(), 0))
            if result.outcome is not None:
                outcomes[result.outcome] += 1
        counts = [x for outcome, count in outcomes.items() for x in (f"{WEBHOOK_COUNTER}{outcome}", count)]
        await self._settle(
            keys=[keys.WEBHOOK_READY, keys.STATS, keys.DEAD_LETTERS],
            args=[self.retention, keys.webhook_timers(""), keys.delivery(""), len(outcomes), *counts, *entries],
        )

    async def update_subscription(self, subscription_id: str, **fields: object) -> Subscription | None:
        """`Subscriptions.update`, on this client."""

        async def change(pipe: Any) -> Subscription | None:
            updated = changed(await pipe.hget(keys.SUBSCRIPTIONS, subscription_id), fields)
            if updated is not None:
                pipe.multi()
                stage_save(pipe, updated)
            return updated

        result = await self.redis.transaction(change, keys.SUBSCRIPTIONS, value_from_callable=True)
        return result if isinstance(result, Subscription) else None
