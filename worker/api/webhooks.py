"""Webhook subscriptions of the token's account over HTTP: add, list, remove.

A subscription is checked exactly as `runstate webhooks add` checks it (`new_subscription`):
strict fields, then the SSRF guard, which resolves the URL's host and refuses private and
loopback targets unless RUNSTATE_WEBHOOK_ALLOW_PRIVATE allows them. Its secret is shown whole
only in the answer that creates it. Another account's subscription answers 404, like a missing one.
"""

from typing import Annotated, Any

from fastapi import APIRouter, Request, Response
from pydantic import BaseModel, ConfigDict, Field

from worker.api.auth import Account, Rt
from worker.api.errors import NOT_FOUND, RESPONSES, ApiError, documented
from worker.api.schemas import Webhook, WebhookList
from worker.store.subscriptions import Subscriptions
from worker.webhooks.subscribe import RefusedSubscription, new_subscription

MAX_PER_ACCOUNT = 100  # every commit reads every subscription: an account may not add without end

router = APIRouter(responses=RESPONSES)


class NewWebhook(BaseModel):
    model_config = ConfigDict(extra="forbid")

    url: str = Field(min_length=1, max_length=2048, description="http or https; a public address")
    events: list[Annotated[str, Field(min_length=1, max_length=64)]] = Field(
        default=["*"], min_length=1, max_length=32, description="filters: run.completed, step.*, run.*, *"
    )
    secret: str | None = Field(
        default=None, min_length=1, max_length=256, description="whsec_ + base64 (generated when absent)"
    )


_CREATED: dict[int | str, dict[str, Any]] = {
    201: {"model": Webhook, "description": "the subscription, with its whole secret (shown only here)"},
    409: documented(f"CONFLICT: the account already has {MAX_PER_ACCOUNT} subscriptions"),
}


@router.post("/v1/webhooks", status_code=201, response_model=None, responses=_CREATED)
def add_webhook(new: NewWebhook, request: Request, owner: Account, runtime: Rt) -> dict[str, object]:
    """Subscribe a URL to the account's status changes; 400 naming the rule when it is refused."""
    subscriptions = Subscriptions(runtime.redis)
    if sum(1 for _ in subscriptions.all(owner)) >= MAX_PER_ACCOUNT:
        raise ApiError(409, f"the account has {MAX_PER_ACCOUNT} subscriptions; at most {MAX_PER_ACCOUNT} are allowed")
    try:
        subscription = new_subscription(
            new.url,
            owner,
            new.events,
            new.secret,
            allow_private=runtime.settings.webhook_allow_private,
            now=runtime.store.now_ms(),
            resolve=request.app.state.resolve,
        )
    except RefusedSubscription as refused:
        raise ApiError(400, refused.reason) from None
    subscriptions.save(subscription)
    return subscription.revealed()


@router.get("/v1/webhooks", response_model=None, responses={200: {"model": WebhookList}})
def list_webhooks(owner: Account, runtime: Rt) -> dict[str, object]:
    """The account's subscriptions, oldest first, secrets masked."""
    found = sorted(Subscriptions(runtime.redis).all(owner), key=lambda s: (s.created_at, s.id))
    return {"object": "list", "data": [s.public() for s in found]}


@router.delete("/v1/webhooks/{subscription_id}", status_code=204, response_class=Response, responses=NOT_FOUND)
def remove_webhook(subscription_id: str, owner: Account, runtime: Rt) -> None:
    """Remove one of the account's subscriptions; its pending deliveries are dropped."""
    subscriptions = Subscriptions(runtime.redis)
    found = subscriptions.get(subscription_id)
    if found is None or found.account != owner or not subscriptions.remove(subscription_id):
        raise ApiError(404, f"subscription {subscription_id!r} not found")
