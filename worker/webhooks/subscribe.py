"""Checking a new webhook subscription: every field by the model, then the URL by the SSRF guard.
`runstate webhooks add` and POST /v1/webhooks both come here, so both refuse the same things."""

from pydantic import ValidationError

from worker.store.subscriptions import Subscription
from worker.webhooks.ssrf import Resolver, UnsafeTarget, check_url, resolve_host


class RefusedSubscription(ValueError):
    """Raised by `new_subscription` when the URL is unsafe or a field breaks a rule; `reason` names them."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def new_subscription(
    url: str,
    account: str,
    events: list[str],
    secret: str | None = None,
    *,
    allow_private: bool,
    now: int,
    resolve: Resolver | None = None,
) -> Subscription:
    """A subscription checked as `webhooks add` and POST /v1/webhooks both check one: every field
    by the model, then the URL by the SSRF guard (which resolves its host, with `resolve`)."""
    fields: dict[str, object] = {"url": url, "account": account, "events": events, "created_at": now}
    if secret is not None:
        fields["secret"] = secret
    try:
        subscription = Subscription.model_validate(fields)
        check_url(url, allow_private=allow_private, resolve=resolve or resolve_host)
    except UnsafeTarget as unsafe:
        raise RefusedSubscription(f"refused: {unsafe.reason}") from None
    except ValidationError as invalid:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in invalid.errors())
        raise RefusedSubscription(problems) from None
    return subscription
