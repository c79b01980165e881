"""Webhook delivery records: the outbox entry, its attempts, and where it stands.

A delivery is written by the run's commit (`commit.pack` builds it with `outbox_records`), so a transition and its
deliveries exist together or not at all. Its `id` is the `webhook-id` of every attempt.
"""

from collections.abc import Iterator, Sequence
from enum import StrEnum

import orjson
from pydantic import BaseModel, ConfigDict
from redis import Redis

from statemachine.models import RunState, Transition
from statemachine.webhooks import delivery_id, is_status_change, matches, payload
from worker.store import keys
from worker.store.replies import as_text
from worker.store.subscriptions import Subscription


class DeliveryState(StrEnum):
    PENDING = "pending"  # an attempt is due (the first one at once)
    DELIVERED = "delivered"  # a 2xx answered
    DEAD = "dead"  # every attempt failed, or the endpoint said 410 Gone: kept for replay
    DROPPED = "dropped"  # its subscription was removed


class Attempt(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    at: int  # ms
    status: int | None = None  # the HTTP status, when one came back
    error: str | None = None  # why it failed without one (timeout, refused, unsafe target)
    duration_ms: int = 0


class Delivery(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str
    subscription_id: str
    account: str
    payload: str  # the exact body: every retry and replay sends the same bytes
    state: DeliveryState = DeliveryState.PENDING
    attempts: list[Attempt] = []
    reason: str | None = None
    created_at: int
    replayed_after: int = 0  # attempts made before the last replay: the schedule starts again after them

    @property
    def attempts_since_replay(self) -> int:
        return len(self.attempts) - self.replayed_after

    @staticmethod
    def new_json(delivery_id: str, subscription: Subscription, body: str, now: int) -> bytes:
        """A new pending delivery's `to_json()`, as orjson makes it: the commit writes one per
        transition and subscription, so the hot path skips building the model (a test holds
        the two equal)."""
        record: dict[str, object] = {
            "id": delivery_id,
            "subscription_id": subscription.id,
            "account": subscription.account,
            "payload": body,
            "state": DeliveryState.PENDING,
            "attempts": [],
            "reason": None,
            "created_at": now,
            "replayed_after": 0,
        }
        return orjson.dumps(record)

    def to_json(self) -> bytes:
        return self.model_dump_json().encode()


def outbox_records(
    state: RunState, history: list[Transition], subscribers: Sequence[Subscription], now: int
) -> list[tuple[str, str, bytes]]:
    """(delivery id, subscription id, record): one delivery per status change per subscription
    of the run's account that wants it, written by the same commit as the change itself."""
    if not subscribers or not history:
        return []
    created = state.run.created_at
    changes = [(t, orjson.dumps(payload(t, state.run.account_id)).decode()) for t in history if is_status_change(t)]
    deliveries = []
    for subscription in subscribers:
        for transition, body in changes:  # the body is the same bytes for every subscription
            if matches(subscription.events, transition.object, transition.to):
                d_id = delivery_id(subscription.id, transition, created)
                deliveries.append((d_id, subscription.id, Delivery.new_json(d_id, subscription, body, now)))
    return deliveries


WEBHOOK_COUNTER = "webhook:"  # prefix of the attempt counters in keys.STATS ("webhook:delivered", ...)


class Deliveries:
    def __init__(self, redis: Redis, retention: int) -> None:
        self.redis = redis
        self.retention = retention

    def get(self, delivery_id: str) -> Delivery | None:
        raw = self.redis.get(keys.delivery(delivery_id))
        return None if raw is None else Delivery.model_validate_json(raw)

    def get_many(self, delivery_ids: list[str]) -> list[Delivery | None]:
        """Several deliveries in one round trip, in order; None where one is gone."""
        if not delivery_ids:
            return []
        raws = self.redis.mget([keys.delivery(d) for d in delivery_ids])
        return [None if raw is None else Delivery.model_validate_json(raw) for raw in raws]

    def replay(self, delivery_id: str, now: int) -> Delivery | None:
        """Send a dead delivery again, with its webhook-id, from now on its schedule again."""
        delivery = self.get(delivery_id)
        if delivery is None:
            return None
        again = delivery.model_copy(
            update={"state": DeliveryState.PENDING, "reason": None, "replayed_after": len(delivery.attempts)}
        )
        with self.redis.pipeline(transaction=True) as pipe:
            pipe.set(keys.delivery(delivery_id), again.to_json())
            pipe.lrem(keys.DEAD_LETTERS, 0, delivery_id)
            pipe.zadd(keys.webhook_timers(delivery.subscription_id), {delivery_id: now})
            pipe.zadd(keys.WEBHOOK_READY, {delivery.subscription_id: now}, lt=True)
            pipe.execute()
        return again

    def pending(self) -> int:
        """Deliveries waiting for an attempt (or in one), across every subscription."""
        subscriptions = self.redis.zrange(keys.WEBHOOK_READY, 0, -1)
        with self.redis.pipeline(transaction=False) as pipe:
            for subscription_id in subscriptions:
                pipe.zcard(keys.webhook_timers(as_text(subscription_id)))
            pipe.zcard(keys.LEGACY_WEBHOOK_TIMERS)
            return sum(pipe.execute())

    def dead(self, account: str | None = None, limit: int | None = None) -> Iterator[Delivery]:
        found = 0
        for raw_id in self.redis.lrange(keys.DEAD_LETTERS, 0, -1):
            delivery = self.get(as_text(raw_id))
            if delivery is None or (account is not None and delivery.account != account):
                continue
            yield delivery
            found += 1
            if limit is not None and found >= limit:
                return
