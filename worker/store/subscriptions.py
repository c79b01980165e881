"""Webhook subscriptions: each belongs to an account, has a URL, a secret and filters."""

import base64
import secrets
from collections.abc import Iterator
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator
from redis import Redis

from statemachine.webhooks import valid_filter
from worker.store import keys


def _new_version() -> str:
    """A fresh token, not a counter: a counter that restarted (a flushed or failed-over Redis)
    could come back to a number a worker still caches."""
    return secrets.token_hex(8)


def new_secret() -> str:
    """`whsec_` + base64 of 24 random bytes, as Standard Webhooks spells secrets."""
    return "whsec_" + base64.b64encode(secrets.token_bytes(24)).decode()


class Subscription(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    id: str = Field(default_factory=lambda: "sub_" + secrets.token_hex(8))
    account: str = Field(min_length=1, max_length=128)
    url: str = Field(min_length=1, max_length=2048)
    secret: str = Field(default_factory=new_secret, repr=False)
    events: list[str] = Field(default_factory=lambda: ["*"], min_length=1, max_length=32)
    enabled: bool = True
    disabled_reason: str | None = None
    failing_since: int | None = None  # ms of the first failure since the last success
    created_at: int = 0

    @field_validator("events")
    @classmethod
    def _filters(cls, events: list[str]) -> list[str]:
        bad = [e for e in events if not valid_filter(e)]
        if bad:
            raise ValueError(f"events {bad!r}: each must be *, run.*, step.*, run.<status> or step.<status>")
        return events

    @field_validator("secret")
    @classmethod
    def _secret(cls, secret: str) -> str:
        body = secret.removeprefix("whsec_")
        try:
            raw = base64.b64decode(body + "==", validate=False)
        except ValueError:
            raise ValueError("secret must be whsec_ followed by base64") from None
        if not secret.startswith("whsec_") or len(raw) < 16:
            raise ValueError("secret must be whsec_ followed by base64 of at least 16 bytes")
        return secret

    def public(self) -> dict[str, object]:
        """What `list` shows: everything but the secret, which only `add` prints, once."""
        return self.model_dump(exclude={"secret"}) | {"secret": "whsec_…" + self.secret[-4:]}

    def revealed(self) -> dict[str, object]:
        """What `add` (and POST /v1/webhooks) shows, once: everything, the secret whole."""
        return self.public() | {"secret": self.secret}


def changed(raw: bytes | None, fields: dict[str, object]) -> Subscription | None:
    """The stored subscription `raw` with some fields changed, as `Subscriptions.update` writes it:
    None when it was removed; a disabled one's `failing_since` is left alone unless `enabled=True`
    is asked for."""
    if raw is None:
        return None
    current = Subscription.model_validate_json(raw)
    if not current.enabled and fields.get("enabled") is not True:
        fields = {k: v for k, v in fields.items() if k != "failing_since"}
    return current.model_copy(update=fields)


def stage_save(pipe: Any, subscription: Subscription) -> None:
    """Queue on `pipe` (sync or asyncio): the subscription written, and a new version for the caches."""
    pipe.hset(keys.SUBSCRIPTIONS, subscription.id, subscription.model_dump_json())
    pipe.set(keys.SUBSCRIPTIONS_VERSION, _new_version())


class Subscriptions:
    def __init__(self, redis: Redis) -> None:
        self.redis = redis
        self._by_id: dict[str, Subscription] = {}
        self._read_at: bytes | None = None  # the version `_by_id` was read at (None: not read yet)

    def save(self, subscription: Subscription) -> None:
        with self.redis.pipeline(transaction=True) as pipe:
            stage_save(pipe, subscription)
            pipe.execute()

    def get(self, subscription_id: str) -> Subscription | None:
        raw = self.redis.hget(keys.SUBSCRIPTIONS, subscription_id)
        return None if raw is None else Subscription.model_validate_json(raw)

    def update(self, subscription_id: str, **fields: object) -> Subscription | None:
        """Change some fields of the stored subscription, as it is now: never resurrects a removed
        one, and never re-enables a disabled one unless `enabled=True` is asked for."""

        def change(pipe: Any) -> Subscription | None:
            updated = changed(pipe.hget(keys.SUBSCRIPTIONS, subscription_id), fields)
            if updated is not None:
                pipe.multi()
                stage_save(pipe, updated)
            return updated

        result = self.redis.transaction(change, keys.SUBSCRIPTIONS, value_from_callable=True)  # type: ignore[arg-type]
        return result if isinstance(result, Subscription) else None

    def remove(self, subscription_id: str) -> bool:
        with self.redis.pipeline(transaction=True) as pipe:
            pipe.hdel(keys.SUBSCRIPTIONS, subscription_id)
            pipe.set(keys.SUBSCRIPTIONS_VERSION, _new_version())
            removed, _ = pipe.execute()
        return bool(removed)

    def version(self) -> bytes:
        """Changes whenever a subscription is saved, updated or removed."""
        return self.redis.get(keys.SUBSCRIPTIONS_VERSION) or b""  # type: ignore[return-value]

    def as_of(self, version: bytes) -> dict[str, Subscription]:
        """Every subscription by id, read again only when `version` moved since the last read:
        workers and the delivery process look them up per commit and per attempt."""
        if self._read_at != version:
            self._by_id = {s.id: s for s in self.all()}
            self._read_at = version
        return self._by_id

    def all(self, account: str | None = None) -> Iterator[Subscription]:
        for raw in self.redis.hvals(keys.SUBSCRIPTIONS):
            subscription = Subscription.model_validate_json(raw)
            if account is None or subscription.account == account:
                yield subscription
