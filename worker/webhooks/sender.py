"""`runstate webhooks deliver`: send what the outbox holds, signed, concurrently, with retries.

Its own process (the Procfile's `webhooks:`), so delivery never slows event processing and
event workers keep listening on exactly one queue. Due deliveries are claimed from the
webhook timers with a lease, so an attempt cut short by a crash is made again, never lost —
and several delivery processes can share one outbox. Each attempt runs in its own task,
within the process's slots and its subscription's (`slots.py`), so one hanging endpoint
costs its own slots and its attempt timeout, nothing more. Results are written many at once.
"""

import asyncio
import contextlib
import ssl
import time
from collections import deque
from collections.abc import Coroutine
from typing import Any

import certifi
import structlog
import uvloop
from redis.asyncio import Redis
from redis.exceptions import RedisError

from worker.settings import Settings
from worker.store import keys
from worker.store.connection import connect_async
from worker.store.outage import PROBE_TTL_MS, Outage, is_fault
from worker.store.outbox import Delivery, DeliveryState
from worker.store.sending import Claimed, Forget, Result, Sending
from worker.store.subscriptions import Subscription
from worker.webhooks.attempts import Attempts
from worker.webhooks.pinned import PinnedSessions
from worker.webhooks.slots import Slots

log = structlog.get_logger("runstate.webhooks")

POLL_INTERVAL = 0.05  # seconds between claims when nothing was due for a while
TRICKLE = 0.01  # seconds between claims while deliveries come due one by one, fewer than the free slots
FLOWING = 1.0  # seconds after a claim found deliveries during which an empty one waits only TRICKLE
SCAN = 200  # subscriptions with deliveries due a claim looks at, the earliest first
IDLE_HORIZON = 1000  # ms: `until_idle` stops once nothing is due sooner than this
WRITE_EVERY = 0.005  # seconds results wait to be written together (their leases are far longer)


class Results:
    """Results waiting to be written; one pipeline takes every result that came in meanwhile."""

    def __init__(self, sending: Sending) -> None:
        self.sending = sending
        self.pending: list[Result] = []
        self.flushing: asyncio.Task[None] | None = None
        self.added = self.done = 0  # results ever added, and ever written (or given up on)

    def add(self, result: Result) -> None:
        self.pending.append(result)
        self.added += 1
        if self.flushing is None:
            self.flushing = asyncio.create_task(self._flush())

    async def _flush(self) -> None:
        try:
            await asyncio.sleep(WRITE_EVERY)  # one write for every result of the next few ms
            while self.pending:
                batch, self.pending = self.pending, []
                try:
                    await self.sending.write(batch)
                except RedisError:  # their leases bring these deliveries back: attempted again, not lost
                    log.exception("webhook.results_not_written", count=len(batch))
                self.done += len(batch)
        finally:
            self.flushing = None

    async def written(self) -> None:
        while self.flushing is not None:
            await asyncio.shield(self.flushing)


class Deliverer:
    def __init__(self, settings: Settings, redis: Redis) -> None:
        self.settings = settings
        self.sending = Sending(redis, settings.retention)
        tls = ssl.create_default_context(cafile=certifi.where())  # built once: loading CA certificates is slow
        self.sessions = PinnedSessions(tls)
        self.attempts = Attempts(settings, self.sessions, self.sending)
        self.slots = Slots(
            settings.webhook_concurrency, settings.webhook_concurrency_per_subscription, settings.webhook_timeout
        )
        self.results = Results(self.sending)
        self.tasks: set[asyncio.Task[None]] = set()
        self.waiting: dict[str, deque[tuple[Delivery, dict[str, Subscription], int]]] = {}  # claimed, queued
        self.stopping = False
        self.flowing_until = 0.0  # while deliveries keep coming due, claims follow them closely

    async def run(self, stop: asyncio.Event, *, until_idle: bool = False) -> None:
        """Claim and send due deliveries until `stop` is set (or, with `until_idle`, none are due)."""
        try:
            await self._loop(stop, until_idle)
        finally:
            self.stopping = True  # what is queued is not started: its lease brings it back
            while self.tasks:
                await asyncio.gather(*self.tasks, return_exceptions=True)
            await self.results.written()
            await self.sessions.close()

    async def _loop(self, stop: asyncio.Event, until_idle: bool) -> None:
        # a claimed delivery may wait for a slot for up to one attempt, then take one itself;
        # one that outlives its lease is made again
        lease_ms = int((2 * self.settings.webhook_timeout + 5) * 1000)
        while not stop.is_set():
            self.slots.freed.clear()
            free = self.slots.free()
            claimed, settled = None, self.results.done  # every result written when the claim began?
            if free:  # claim only what can start now: a claimed delivery's lease runs from its claim
                rooms, room = self.slots.rooms(), self.slots.room()
                claimed = await self.sending.claim(free, lease_ms, SCAN, rooms, room)
                await self._start(claimed)
            if claimed is not None and len(claimed.deliveries) >= free:
                continue  # every free slot taken: more may be due
            if until_idle and await self._idle(claimed, settled):
                return
            await self._pause(claimed)

    async def _pause(self, claimed: Claimed | None) -> None:
        """Until the next claim. With no slot free, or some deliveries still due that had no room,
        until a slot frees (a few ms at most for the latter); else a while, so a claim takes what
        came due meanwhile rather than one delivery at a time, but never past the earliest timer."""
        if claimed is None:
            await self._until_freed(POLL_INTERVAL)
        elif claimed.earliest is not None and claimed.earliest <= claimed.now:
            await self._until_freed(TRICKLE)
        else:
            if claimed.deliveries:
                self.flowing_until = time.monotonic() + FLOWING
            pause = TRICKLE if time.monotonic() < self.flowing_until else POLL_INTERVAL
            if claimed.earliest is not None:
                pause = min(pause, (claimed.earliest - claimed.now) / 1000)
            await asyncio.sleep(pause)

    async def _until_freed(self, longest: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.slots.freed.wait(), longest)

    async def _idle(self, claimed: Claimed | None, settled: int) -> bool:
        """Nothing in flight, nothing left to write, and nothing due within IDLE_HORIZON, as seen
        by a claim begun after the last result was written (`settled`: results written then)."""
        if self.tasks or claimed is None:
            return False
        if self.results.added != settled:
            await self.results.written()
            return False  # the claim may have read the timers before these results moved them
        return claimed.earliest is None or claimed.earliest > claimed.now + IDLE_HORIZON

    async def _start(self, claimed: Claimed) -> None:
        if not claimed.deliveries:
            return
        subscriptions = await self.sending.subscriptions(claimed.version)
        for subscription_id, delivery_id, delivery in claimed.deliveries:
            if delivery is None or delivery.state is not DeliveryState.PENDING:
                self.results.add(Forget(subscription_id, delivery_id))
                continue
            if self.slots.has_room(delivery.subscription_id):
                self._begin(delivery, subscriptions, claimed.now)
            else:  # the claim left room for it in the queue
                self.waiting.setdefault(delivery.subscription_id, deque()).append(
                    (delivery, subscriptions, claimed.now)
                )
                self.slots.queue(delivery.subscription_id, 1)

    def _begin(self, delivery: Delivery, subscriptions: dict[str, Subscription], now: int) -> None:
        started = self.slots.take(delivery.subscription_id)
        task = asyncio.create_task(self._send(delivery, subscriptions, now, started))
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    def _next(self, subscription_id: str) -> None:
        """The subscription's next queued delivery, into the slot just freed."""
        queue = self.waiting.get(subscription_id)
        if not queue or self.stopping:
            return
        self._begin(*queue.popleft())
        self.slots.queue(subscription_id, -1)
        if not queue:
            del self.waiting[subscription_id]

    async def _send(self, delivery: Delivery, subscriptions: dict[str, Subscription], now: int, started: float) -> None:
        try:
            self.results.add(await self.attempts.make(delivery, subscriptions.get(delivery.subscription_id), now))
        except Exception:  # one delivery's bug must not stop the others; its lease brings it back
            log.exception("webhook.attempt_crashed", delivery_id=delivery.id, subscription_id=delivery.subscription_id)
        finally:
            self.slots.give_back(delivery.subscription_id, started)
            self._next(delivery.subscription_id)


async def deliver(settings: Settings, stop: asyncio.Event, *, until_idle: bool = False) -> None:
    """Run one delivery process on its own asyncio Redis connection pool, resumed after each Redis
    fault (worker.store.outage): logged once per outage, retried with backoff; the deliveries it
    had claimed are kept by their leases meanwhile."""
    redis = connect_async(settings)
    outage = Outage("webhooks")
    try:
        while True:
            try:
                if outage.ongoing:
                    await redis.set(keys.PROBE, b"1", px=PROBE_TTL_MS)  # a write: a full Redis is still down
                    outage.recovered()
                await Deliverer(settings, redis).run(stop, until_idle=until_idle)
                return
            except Exception as error:
                if not is_fault(error):
                    raise
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), outage.failed(error))
                if stop.is_set():
                    return
    finally:
        await redis.aclose()


def run_loop(main: Coroutine[Any, Any, None]) -> None:
    """Run the delivery loop on uvloop: libuv's loop and transports take ~12% less CPU per
    attempt than asyncio's own (benchmarks/README.md, webhooks)."""
    uvloop.run(main)


def deliver_forever(settings: Settings) -> None:
    """Run the delivery loop until SIGTERM or SIGINT; in-flight attempts finish first."""
    import signal

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        await deliver(settings, stop)

    run_loop(main())
