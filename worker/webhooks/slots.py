"""Attempts in flight, in all and per subscription: so one slow endpoint holds only its own slots.

A process starts at most `total` attempts at once, and at most `per_subscription` of any one
subscription; it may hold as many more of a subscription's deliveries claimed and queued, so
a slot that frees is refilled at once instead of after a claim's round trip. A subscription
with no room left has its place among the ready subscriptions pushed back when the process
claims (worker/store/lua/claim_webhooks.lua), by about as long as it takes to free a slot:
its recent attempts' average, or how long it has gone without one ending; at least
`MIN_DEFER`, at most the attempt timeout. So a hanging endpoint's backlog never stands in
front of the others, and a fast endpoint is due again by the time it has room.
"""

import asyncio
import time

from worker.store.sending import Room

MIN_DEFER = 0.005  # seconds: the least a full subscription's place is pushed back
WEIGHT = 0.2  # of the newest attempt in a subscription's moving average duration


class Slots:
    def __init__(self, total: int, per_subscription: int, longest: float) -> None:
        self.total = total
        self.per_subscription = per_subscription
        self.longest = longest  # an attempt's timeout: no push-back is longer
        self.started: dict[str, list[float]] = {}  # subscription -> its attempts in flight (monotonic starts)
        self.duration: dict[str, float] = {}  # subscription -> moving average seconds per attempt
        self.ended: dict[str, float] = {}  # subscription -> when its last attempt ended (monotonic)
        self.in_flight = 0
        self.queued: dict[str, int] = {}  # subscription -> its claimed deliveries waiting for a slot
        self.freed = asyncio.Event()  # set whenever an attempt ends: a claim may find room again

    def free(self) -> int:
        """How many more deliveries a claim may take: in flight and queued count alike."""
        return self.total - self.in_flight - sum(self.queued.values())

    def has_room(self, subscription_id: str) -> bool:
        return len(self.started.get(subscription_id, ())) < self.per_subscription

    def queue(self, subscription_id: str, change: int) -> None:
        left = self.queued.get(subscription_id, 0) + change
        if left:
            self.queued[subscription_id] = left
        else:
            self.queued.pop(subscription_id, None)

    def rooms(self) -> dict[str, Room]:
        """What a claim may take of every subscription with attempts in flight: its free slots, and
        a queue as long as its limit less what waits there (the others: `room()`)."""
        now, rooms = time.monotonic(), {}
        for subscription_id, starts in self.started.items():
            stalled = now - max(self.ended.get(subscription_id, 0.0), min(starts))  # hanging: grows
            slow = max(self.duration.get(subscription_id, 0.0), stalled)
            defer = min(max(slow, MIN_DEFER), self.longest)
            start = self.per_subscription - len(starts)
            queue = self.per_subscription - self.queued.get(subscription_id, 0)
            rooms[subscription_id] = Room(start, queue, round(defer * 1000))
        return rooms

    def room(self) -> Room:
        """What a claim may take of a subscription with nothing in flight here."""
        return Room(self.per_subscription, self.per_subscription, round(MIN_DEFER * 1000))

    def take(self, subscription_id: str) -> float:
        """One slot of the subscription's; returns when the attempt started, for `give_back`."""
        started = time.monotonic()
        self.started.setdefault(subscription_id, []).append(started)
        self.in_flight += 1
        return started

    def give_back(self, subscription_id: str, started: float) -> None:
        starts = self.started[subscription_id]
        starts.remove(started)
        if not starts:
            del self.started[subscription_id]
        self.ended[subscription_id] = ended = time.monotonic()
        took = ended - started
        average = self.duration.get(subscription_id, took)
        self.duration[subscription_id] = average + WEIGHT * (took - average)
        self.in_flight -= 1
        self.freed.set()
