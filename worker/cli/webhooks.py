"""`runstate webhooks ...`: subscriptions, dead letters, replays, and the delivery process."""

import click

from worker.cli.support import Commands, print_json, print_lines, runtime_from_env
from worker.reads import NotFound
from worker.settings import ENVIRONMENT_HELP
from worker.store.outbox import Deliveries, Delivery
from worker.store.subscriptions import Subscriptions


def _dead_line(delivery: Delivery, subscriptions: Subscriptions) -> dict[str, object]:
    subscription = subscriptions.get(delivery.subscription_id)
    return {
        "delivery_id": delivery.id,
        "subscription_id": delivery.subscription_id,
        "account": delivery.account,
        "url": subscription.url if subscription else None,
        "payload": delivery.payload,
        "reason": delivery.reason,
        "attempts": [a.model_dump() for a in delivery.attempts],
    }


@click.group(cls=Commands, epilog=ENVIRONMENT_HELP)
def webhooks() -> None:
    """Signed status-change webhooks: subscriptions, dead letters, replay, delivery."""


@webhooks.command(epilog=ENVIRONMENT_HELP)
@click.argument("url")
@click.option("--secret", help="whsec_… (generated when not given).")
@click.option("--events", default="*", show_default=True, help="Comma-separated filters: run.completed, step.*, *…")
@click.option("--account", help="The account whose runs it sees (default RUNSTATE_DEFAULT_ACCOUNT).")
def add(url: str, secret: str | None, events: str, account: str | None) -> None:
    """Subscribe URL; prints the subscription with its secret (shown only here)."""
    # imported here: the SSRF guard brings httpx, which every other command (the worker's start
    # above all) would pay for without using
    from worker.webhooks.subscribe import RefusedSubscription, new_subscription

    runtime = runtime_from_env()
    settings = runtime.settings
    try:
        subscription = new_subscription(
            url,
            account or settings.default_account,
            [e.strip() for e in events.split(",") if e.strip()],
            secret,
            allow_private=settings.webhook_allow_private,
            now=runtime.store.now_ms(),
        )
    except RefusedSubscription as refused:
        raise click.ClickException(refused.reason) from None
    Subscriptions(runtime.redis).save(subscription)
    print_json(subscription.revealed())  # the only time the secret is shown


@webhooks.command("list", epilog=ENVIRONMENT_HELP)
@click.option("--account", help="Only this account's subscriptions (default: all).")
def list_(account: str | None) -> None:
    """Subscriptions as JSON Lines (secrets masked)."""
    print_lines(s.public() for s in Subscriptions(runtime_from_env().redis).all(account))


@webhooks.command(epilog=ENVIRONMENT_HELP)
@click.argument("subscription_id")
def remove(subscription_id: str) -> None:
    """Remove a subscription; its pending deliveries are dropped."""
    if not Subscriptions(runtime_from_env().redis).remove(subscription_id):
        raise NotFound(f"subscription {subscription_id!r}")


@webhooks.command(epilog=ENVIRONMENT_HELP)
@click.argument("subscription_id")
def enable(subscription_id: str) -> None:
    """Enable a subscription again (after 410 Gone or a long failure); then replay its dead letters."""
    updated = Subscriptions(runtime_from_env().redis).update(
        subscription_id, enabled=True, disabled_reason=None, failing_since=None
    )
    if updated is None:
        raise NotFound(f"subscription {subscription_id!r}")
    print_json(updated.public())


@webhooks.command(epilog=ENVIRONMENT_HELP)
@click.option("--limit", type=click.IntRange(1), help="At most this many.")
@click.option("--account", help="Only this account's (default: all).")
def dead(limit: int | None, account: str | None) -> None:
    """Dead-lettered deliveries as JSON Lines: id, subscription, URL, payload, every attempt."""
    runtime = runtime_from_env()
    subscriptions = Subscriptions(runtime.redis)
    deliveries = Deliveries(runtime.redis, runtime.settings.retention)
    print_lines(_dead_line(d, subscriptions) for d in deliveries.dead(account, limit))


@webhooks.command(epilog=ENVIRONMENT_HELP)
@click.argument("delivery_id", required=False)
@click.option("--all", "replay_all", is_flag=True, help="Replay every dead delivery.")
def replay(delivery_id: str | None, replay_all: bool) -> None:
    """Send dead deliveries again, with their original webhook-id."""
    if (delivery_id is None) == (not replay_all):
        raise click.UsageError("give a DELIVERY_ID or --all")
    runtime = runtime_from_env()
    deliveries = Deliveries(runtime.redis, runtime.settings.retention)
    ids = [d.id for d in deliveries.dead()] if replay_all else [str(delivery_id)]
    now = runtime.store.now_ms()
    for one in ids:
        if deliveries.replay(one, now) is None:
            raise NotFound(f"delivery {one!r}")
    click.echo(f"replaying {len(ids)} deliveries", err=True)


@webhooks.command(epilog=ENVIRONMENT_HELP)
@click.option("--until-idle", is_flag=True, help="Exit once nothing is due (for scripts and tests).")
def deliver(until_idle: bool) -> None:
    """Run the delivery process: send due deliveries, signed, with retries (Procfile `webhooks:`)."""
    import asyncio

    from worker.webhooks.sender import deliver, deliver_forever, run_loop

    settings = runtime_from_env(log_level="info").settings
    if until_idle:
        run_loop(deliver(settings, asyncio.Event(), until_idle=True))
    else:
        deliver_forever(settings)
