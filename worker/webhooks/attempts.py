"""One attempt at a claimed delivery: check the target, sign, post, and say what follows.

Logs name the delivery, the subscription and where it went as scheme and host only: a
webhook URL's path and query often carry a secret token.
"""

import asyncio
import random
import time
from datetime import UTC, datetime

import aiohttp
import structlog
from standardwebhooks.webhooks import Webhook

from worker.settings import Settings
from worker.store.outbox import Attempt, Delivery, DeliveryState
from worker.store.sending import Finish, Result, Retry, Sending
from worker.store.subscriptions import Subscription
from worker.webhooks.pinned import PinnedSessions, origin, origin_of, request_url
from worker.webhooks.ssrf import SharedLookups, Target, UnsafeTarget, check_url_async

log = structlog.get_logger("runstate.webhooks")

JITTER = 0.1  # each retry delay is stretched or shrunk by up to this share


def _sign(subscription: Subscription, delivery: Delivery) -> dict[str, str]:
    signed_at = datetime.now(UTC)
    return {
        "content-type": "application/json",
        "user-agent": "runstate-webhooks/1",
        "webhook-id": delivery.id,
        "webhook-timestamp": str(int(signed_at.timestamp())),
        "webhook-signature": Webhook(subscription.secret).sign(delivery.id, signed_at, delivery.payload),
    }


def _describe(exc: Exception, target: Target) -> str:
    """Why an attempt got no status, without the URL's path or query (aiohttp names the URL)."""
    text = f"{type(exc).__name__}: {exc}"
    for url in (str(request_url(target)), target.url):
        text = text.replace(url, origin(target))
    return text[:300]


class Attempts:
    def __init__(self, settings: Settings, sessions: PinnedSessions, sending: Sending) -> None:
        self.settings = settings
        self.sessions = sessions
        self.sending = sending
        self.lookups = SharedLookups()

    async def make(self, delivery: Delivery, subscription: Subscription | None, now: int) -> Result:
        """One attempt (at the claim's Redis time `now`); what to write about it."""
        if subscription is None:
            return self._finish(delivery, DeliveryState.DROPPED, "subscription removed")
        if not subscription.enabled:
            return self._finish(delivery, DeliveryState.DEAD, f"subscription disabled: {subscription.disabled_reason}")
        started = time.monotonic()
        timeout = self.settings.webhook_timeout
        try:  # the whole attempt, name lookup included, within the timeout (the lease is longer)
            async with asyncio.timeout(timeout):
                status, error = await self._post(subscription, delivery)
        except TimeoutError:
            status, error = None, f"timed out after {timeout:g} s"
        attempt = Attempt(at=now, status=status, error=error, duration_ms=int((time.monotonic() - started) * 1000))
        delivery = delivery.model_copy(update={"attempts": [*delivery.attempts, attempt]})
        log.info(
            "webhook.attempted",
            delivery_id=delivery.id,
            subscription_id=subscription.id,
            target=origin_of(subscription.url),
            status=status,
            error=error,
            attempt=len(delivery.attempts),
        )
        return await self._outcome(delivery, subscription, status, now)

    async def _post(self, subscription: Subscription, delivery: Delivery) -> tuple[int | None, str | None]:
        """The status, or why none came."""
        allow_private = self.settings.webhook_allow_private
        try:
            target = await check_url_async(subscription.url, allow_private=allow_private, lookups=self.lookups)
        except UnsafeTarget as unsafe:
            return None, f"unsafe target: {unsafe.reason}"
        try:
            status = await self.sessions.post(target, delivery.payload.encode(), _sign(subscription, delivery))
        except (aiohttp.ClientError, OSError, ValueError) as exc:
            return None, _describe(exc, target)
        return status, None

    async def _outcome(self, delivery: Delivery, subscription: Subscription, status: int | None, now: int) -> Result:
        if status is not None and 200 <= status < 300:
            if subscription.failing_since is not None:
                await self.sending.update_subscription(subscription.id, failing_since=None)
            return self._finish(delivery, DeliveryState.DELIVERED, None, outcome="delivered")
        if status == 410:
            await self._disable(subscription, "the endpoint answered 410 Gone")
            return self._finish(delivery, DeliveryState.DEAD, "410 Gone: subscription disabled", outcome="gone")
        since = subscription.failing_since
        if since is None:
            await self.sending.update_subscription(subscription.id, failing_since=now)
        elif now - since >= self.settings.webhook_disable_after * 1000:
            await self._disable(subscription, f"no success for {self.settings.webhook_disable_after:g} s")
        return self._retry_or_bury(delivery, now)

    def _retry_or_bury(self, delivery: Delivery, now: int) -> Result:
        schedule = self.settings.retry_schedule()  # read at send time
        done = delivery.attempts_since_replay  # the first attempt is immediate; then one retry per delay
        if done > len(schedule):
            return self._finish(delivery, DeliveryState.DEAD, f"no success in {done} attempts", outcome="failed")
        delay = schedule[done - 1] * random.uniform(1 - JITTER, 1 + JITTER)
        return Retry(delivery, now + int(delay * 1000), "failed")

    def _finish(
        self, delivery: Delivery, state: DeliveryState, reason: str | None, outcome: str | None = None
    ) -> Result:
        """No more attempts; `outcome`: that of the attempt just made, counted with it."""
        if state is DeliveryState.DEAD:
            log.warning(
                "webhook.dead", delivery_id=delivery.id, subscription_id=delivery.subscription_id, reason=reason
            )
        return Finish(delivery.model_copy(update={"state": state, "reason": reason}), outcome)

    async def _disable(self, subscription: Subscription, reason: str) -> None:
        await self.sending.update_subscription(subscription.id, enabled=False, disabled_reason=reason)
        log.warning("webhook.subscription_disabled", subscription_id=subscription.id, reason=reason)
