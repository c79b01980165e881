"""`runstate webhooks deliver`: send what the outbox holds, signed, concurrently, with retries.

Its own process (the Procfile's `webhooks:`), so delivery never slows event processing and
event workers keep listening on exactly one queue. Due deliveries are claimed from the
webhook timers with a lease, so an attempt cut short by a crash is made again, never lost;
each attempt runs in its own task, so one hanging endpoint never delays another.
"""

import asyncio
import contextlib
import random
import time
from datetime import UTC, datetime
from typing import Protocol

import httpx
import structlog
from redis import Redis
from standardwebhooks.webhooks import Webhook

from worker.settings import Settings
from worker.store import keys
from worker.store.outage import Outage, is_fault, probe
from worker.store.outbox import Attempt, Deliveries, Delivery, DeliveryState
from worker.store.runs import Store
from worker.store.subscriptions import Subscription, Subscriptions
from worker.webhooks.ssrf import UnsafeTarget, check_url_async, pinned_client

log = structlog.get_logger("runstate.webhooks")

POLL_INTERVAL = 0.1  # seconds between claims when nothing was due
JITTER = 0.1  # each retry delay is stretched or shrunk by up to this share


class SenderParts(Protocol):
    """What the sender needs from the process that runs it (the runtime fills it)."""

    @property
    def settings(self) -> Settings: ...

    @property
    def redis(self) -> Redis: ...

    @property
    def store(self) -> Store: ...


class Deliverer:
    def __init__(self, runtime: SenderParts) -> None:
        self.settings = runtime.settings
        self.store: Store = runtime.store
        self.deliveries = Deliveries(runtime.redis, runtime.settings.retention)
        self.subscriptions = Subscriptions(runtime.redis)
        self.tls = httpx.create_ssl_context(trust_env=False)  # built once: loading CA certificates is slow
        self.tasks: set[asyncio.Task[None]] = set()

    async def run(self, stop: asyncio.Event, *, until_idle: bool = False) -> None:
        """Claim and send due deliveries until `stop` is set (or, with `until_idle`, none are due)."""
        lease_ms = int((self.settings.webhook_timeout + 5) * 1000)  # an attempt outliving it is made again
        while not stop.is_set():
            # claim only what can start now: a claimed delivery's lease runs from its claim
            free = self.settings.webhook_concurrency - len(self.tasks)
            now, due = self.store.claim_due_at(free, lease_ms, keys.WEBHOOK_TIMERS) if free else (0, [])
            members = [member for member, _ in due]
            # what every claimed attempt needs, read at once: the records, the subscriptions
            ids = [member.removeprefix(keys.delivery_timer("")) for member in members]
            subscriptions = self.subscriptions.as_of(self.subscriptions.version()) if ids else {}
            for delivery_id, delivery in zip(ids, self.deliveries.get_many(ids), strict=True):
                task = asyncio.create_task(self._send(delivery_id, delivery, subscriptions, now))
                self.tasks.add(task)
                task.add_done_callback(self.tasks.discard)
            if not members:
                if until_idle and not self.tasks and free:
                    return
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), POLL_INTERVAL)
        if self.tasks:
            await asyncio.gather(*self.tasks, return_exceptions=True)

    async def _send(
        self, delivery_id: str, delivery: Delivery | None, subscriptions: dict[str, Subscription], now: int
    ) -> None:
        try:
            await self.attempt(delivery_id, delivery, subscriptions, now)
        except Exception:  # one delivery's bug must not stop the others; its lease brings it back
            log.exception("webhook.attempt_crashed", delivery_id=delivery_id)

    async def attempt(
        self, delivery_id: str, delivery: Delivery | None, subscriptions: dict[str, Subscription], now: int
    ) -> None:
        """One attempt at a claimed delivery (as read at its claim, with the subscriptions then and
        the claim's Redis time)."""
        if delivery is None or delivery.state is not DeliveryState.PENDING:
            self.store.redis.zrem(keys.WEBHOOK_TIMERS, keys.delivery_timer(delivery_id))
            return
        subscription = subscriptions.get(delivery.subscription_id)
        if subscription is None:
            self._finish(delivery, DeliveryState.DROPPED, "subscription removed")
            return
        if not subscription.enabled:
            self._finish(delivery, DeliveryState.DEAD, f"subscription disabled: {subscription.disabled_reason}")
            return
        started = time.monotonic()
        try:  # the whole attempt, name lookup included, within the timeout (the lease is longer)
            async with asyncio.timeout(self.settings.webhook_timeout):
                status, error = await self._post(subscription, delivery)
        except TimeoutError:
            status, error = None, f"timed out after {self.settings.webhook_timeout:g} s"
        attempt = Attempt(at=now, status=status, error=error, duration_ms=int((time.monotonic() - started) * 1000))
        delivery = delivery.model_copy(update={"attempts": [*delivery.attempts, attempt]})
        log.info(
            "webhook.attempted",
            delivery_id=delivery.id,
            subscription_id=subscription.id,
            status=status,
            error=error,
            attempt=len(delivery.attempts),
        )
        if status is not None and 200 <= status < 300:
            self._succeeded(subscription)
            self._finish(delivery, DeliveryState.DELIVERED, None, attempt="delivered")
        elif status == 410:
            self._disable(subscription, "the endpoint answered 410 Gone")
            self._finish(delivery, DeliveryState.DEAD, "410 Gone: subscription disabled", attempt="gone")
        else:
            self._failed(subscription, now)
            self._retry_or_bury(delivery, now)

    async def _post(self, subscription: Subscription, delivery: Delivery) -> tuple[int | None, str | None]:
        try:
            target = await check_url_async(subscription.url, allow_private=self.settings.webhook_allow_private)
        except UnsafeTarget as unsafe:
            return None, f"unsafe target: {unsafe.reason}"
        signed_at = datetime.now(UTC)
        headers = {
            "content-type": "application/json",
            "user-agent": "runstate-webhooks/1",
            "webhook-id": delivery.id,
            "webhook-timestamp": str(int(signed_at.timestamp())),
            "webhook-signature": Webhook(subscription.secret).sign(delivery.id, signed_at, delivery.payload),
        }
        try:
            async with (
                pinned_client(target, self.settings.webhook_timeout, verify=self.tls) as client,
                client.stream("POST", target.url, content=delivery.payload.encode(), headers=headers) as response,
            ):
                return response.status_code, None  # the body is never read: the status is the answer
        except httpx.TimeoutException:
            return None, f"timed out after {self.settings.webhook_timeout:g} s"
        except httpx.HTTPError as exc:
            return None, f"{type(exc).__name__}: {exc}"[:300]

    def _retry_or_bury(self, delivery: Delivery, now: int) -> None:
        schedule = self.settings.retry_schedule()  # read at send time
        done = delivery.attempts_since_replay  # the first attempt is immediate; then one retry per delay
        if done > len(schedule):
            self._finish(delivery, DeliveryState.DEAD, f"no success in {done} attempts", attempt="failed")
            return
        delay = schedule[done - 1] * random.uniform(1 - JITTER, 1 + JITTER)
        self.deliveries.retry_at(delivery, now + int(delay * 1000), attempt="failed")

    def _finish(self, delivery: Delivery, state: DeliveryState, reason: str | None, attempt: str | None = None) -> None:
        """No more attempts; `attempt`: the outcome of the one just made, counted with it."""
        self.deliveries.finish(delivery.model_copy(update={"state": state, "reason": reason}), attempt)
        if state is DeliveryState.DEAD:
            log.warning("webhook.dead", delivery_id=delivery.id, reason=reason)

    def _succeeded(self, subscription: Subscription) -> None:
        if subscription.failing_since is not None:
            self.subscriptions.update(subscription.id, failing_since=None)

    def _failed(self, subscription: Subscription, now: int) -> None:
        since = subscription.failing_since
        if since is None:
            self.subscriptions.update(subscription.id, failing_since=now)
        elif now - since >= self.settings.webhook_disable_after * 1000:
            self._disable(subscription, f"no success for {self.settings.webhook_disable_after:g} s")

    def _disable(self, subscription: Subscription, reason: str) -> None:
        self.subscriptions.update(subscription.id, enabled=False, disabled_reason=reason)
        log.warning("webhook.subscription_disabled", subscription_id=subscription.id, reason=reason)


def deliver_forever(runtime: SenderParts) -> None:
    """Run the delivery loop until SIGTERM or SIGINT; in-flight attempts finish first."""
    import signal

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        await _ride_out_redis(Deliverer(runtime), runtime.redis, stop)

    asyncio.run(main())


async def _ride_out_redis(deliverer: Deliverer, redis: Redis, stop: asyncio.Event) -> None:
    """The delivery loop, resumed after each Redis fault (worker.store.outage): logged once per
    outage, retried with backoff; claimed deliveries are kept by their leases meanwhile."""
    outage = Outage("webhooks")
    while True:
        try:
            if outage.ongoing:
                probe(redis)
                outage.recovered()
            await deliverer.run(stop)
            return
        except Exception as error:
            if not is_fault(error):
                raise
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), outage.failed(error))
            if stop.is_set():
                return
