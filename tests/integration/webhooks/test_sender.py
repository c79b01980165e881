"""The delivery process: fair slots, several processes on one outbox, logs that keep URLs' secrets."""

import asyncio
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Iterator

import orjson
import pytest
from redis.asyncio import Redis as AsyncRedis

from statemachine.webhooks import delivery_id
from tests.support.loopback import free_port
from tests.support.processes import cli_env, wait_until
from tests.support.publishing import refs
from tests.support.receiver import Receiver, receiver
from worker.runtime import Runtime
from worker.store import keys
from worker.store.keys import RunRef
from worker.store.sending import SUBSCRIPTION_IN_LEGACY_TIMER, Room, Sending
from worker.store.subscriptions import Subscription, Subscriptions

FAST = {
    "RUNSTATE_WEBHOOK_ALLOW_PRIVATE": "1",
    "RUNSTATE_WEBHOOK_RETRY_SCHEDULE": "0.05,0.05",
    "RUNSTATE_WEBHOOK_TIMEOUT": "2",
}


@pytest.fixture
def hooks(redis_url: str) -> Iterator[Receiver]:
    with receiver() as r:
        yield r


def _subscribe(runtime: Runtime, url: str) -> Subscription:
    subscription = Subscription(account="default", url=url)
    Subscriptions(runtime.redis).save(subscription)
    return subscription


def _commit_runs(runtime: Runtime, prefix: str, count: int) -> list[RunRef]:
    run_ids = [f"{prefix}{n}" for n in range(count)]
    lines = [orjson.dumps({"id": "s", "type": "run.started", "run_id": run_id}).decode() for run_id in run_ids]
    assert runtime.publisher.publish_lines(lines).errors == []
    runs = refs(*run_ids)  # the default account's
    runtime.processor.drain(runs)
    return runs


def _start_sender(redis_url: str, **extra: str) -> "subprocess.Popen[bytes]":
    return subprocess.Popen(
        [sys.executable, "-m", "worker", "webhooks", "deliver"],
        env=cli_env(redis_url, **{**FAST, **extra}),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def _stop(*procs: "subprocess.Popen[bytes]") -> None:
    for proc in procs:
        proc.kill()
        proc.wait(timeout=30)


def test_a_hanging_subscription_holds_only_its_own_slots(hooks: Receiver, redis_url: str, runtime: Runtime) -> None:
    hooks.answers["/hang"] = ["hang"]
    _subscribe(runtime, hooks.url("/hang"))
    _subscribe(runtime, hooks.url("/fast"))
    started = time.monotonic()
    _commit_runs(runtime, "r", 30)  # 30 deliveries to each
    sender = _start_sender(
        redis_url,
        RUNSTATE_WEBHOOK_TIMEOUT="20",
        RUNSTATE_WEBHOOK_CONCURRENCY="8",
        RUNSTATE_WEBHOOK_CONCURRENCY_PER_SUBSCRIPTION="3",
    )
    try:
        wait_until(lambda: len(hooks.on("/fast")) == 30, timeout=30)
        took = time.monotonic() - started
        hung = len(hooks.on("/hang"))
    finally:
        _stop(sender)
    assert took < 15  # every healthy delivery went out while the hanging ones waited for their 20 s timeout
    assert hung == 3  # the hanging endpoint got its own three slots, no more


def test_two_delivery_processes_share_the_outbox_and_send_each_delivery_once(
    hooks: Receiver, redis_url: str, runtime: Runtime
) -> None:
    subscription = _subscribe(runtime, hooks.url("/shared"))
    runs = _commit_runs(runtime, "s", 300)
    senders = [_start_sender(redis_url), _start_sender(redis_url)]
    try:
        wait_until(lambda: len(hooks.on("/shared")) >= 300, timeout=60)
        wait_until(lambda: runtime.redis.zcard(keys.webhook_timers(subscription.id)) == 0, timeout=30)
    finally:
        _stop(*senders)
    sent = Counter(r.headers["webhook-id"] for r in hooks.on("/shared"))
    expected = {
        delivery_id(subscription.id, runtime.store.history(run)[0], runtime.store.get(run).run.created_at)  # type: ignore[union-attr]
        for run in runs
    }
    assert set(sent) == expected
    assert max(sent.values()) == 1


def test_delivery_logs_name_the_subscription_and_host_but_never_the_path_or_query(
    hooks: Receiver, redis_url: str, runtime: Runtime
) -> None:
    secret_path = "/hook/s3cr3t-path?token=s3cr3t-query"
    hooks.answers[secret_path] = [500, 200, 500, 200]
    flaky = _subscribe(runtime, hooks.url(secret_path))
    refused = f"http://127.0.0.1:{free_port()}/s3cr3t-path/refused?token=s3cr3t-query"  # a connection error
    closed = _subscribe(runtime, refused)
    _commit_runs(runtime, "g", 2)
    env = cli_env(redis_url, **FAST) | {"RUNSTATE_LOG_LEVEL": "debug"}  # every library's lines too
    command = [sys.executable, "-m", "worker", "webhooks", "deliver", "--until-idle"]
    done = subprocess.run(command, env=env, capture_output=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    lines = done.stderr.decode().splitlines()
    assert [line for line in lines if "s3cr3t" in line] == []
    attempted = [orjson.loads(line) for line in lines if '"webhook.attempted"' in line]
    assert {(a["subscription_id"], a["target"]) for a in attempted} == {
        (flaky.id, "http://127.0.0.1"),
        (closed.id, "http://127.0.0.1"),
    }
    assert len(hooks.on(secret_path)) >= 3  # failures and successes were both logged


FIVE_TO_START = Room(start=5)


def _claims(redis_url: str, *calls: tuple[int, dict[str, Room]], room: Room = FIVE_TO_START) -> list[list[str]]:
    """Claims in turn, (limit, rooms) each, a subscription not listed given `room` (by default
    5 to start, none to queue, its place left as it is): the subscription of each delivery claimed."""

    async def claim() -> list[list[str]]:
        client = AsyncRedis.from_url(redis_url)
        sending, found = Sending(client, retention=60), []
        try:
            for limit, rooms in calls:
                claimed = await sending.claim(limit, 30_000, 10, rooms, room)
                found.append([subscription_id for subscription_id, _, _ in claimed.deliveries])
        finally:
            await client.aclose()
        return found

    return asyncio.run(claim())


def test_a_claim_takes_each_subscriptions_room_however_long_the_backlog_ahead(runtime: Runtime, redis_url: str) -> None:
    ahead, behind = (_subscribe(runtime, f"https://hooks.example.com/{name}") for name in ("ahead", "behind"))
    _commit_runs(runtime, "backlog_", 300)  # 300 deliveries for each subscription
    runtime.redis.zadd(
        keys.webhook_timers(ahead.id), {m: 1 for m in runtime.redis.zrange(keys.webhook_timers(ahead.id), 0, -1)}
    )  # type: ignore[union-attr]
    runtime.redis.zadd(keys.WEBHOOK_READY, {ahead.id: 1})  # its backlog due long before the other's

    first, second = _claims(redis_url, (20, {}), (20, {ahead.id: Room(start=0, defer_ms=60_000)}))
    assert first == [ahead.id] * 5 + [behind.id] * 5  # each its room, the earliest first
    assert second == [behind.id] * 5  # one with no room left is passed over at once
    # and its place among the ready is pushed back (by its defer), its deliveries left due
    assert runtime.redis.zscore(keys.WEBHOOK_READY, ahead.id) > runtime.redis.zscore(keys.WEBHOOK_READY, behind.id)  # type: ignore[operator]
    assert runtime.redis.zcount(keys.webhook_timers(ahead.id), "-inf", 1) == 295


def test_a_claim_fills_every_subscriptions_free_slots_before_any_queue(runtime: Runtime, redis_url: str) -> None:
    first, second, third = (_subscribe(runtime, f"https://hooks.example.com/{n}") for n in range(3))
    _commit_runs(runtime, "spread_", 30)
    for rank, subscription in enumerate((first, second, third)):  # due in this order
        runtime.redis.zadd(keys.WEBHOOK_READY, {subscription.id: rank})

    (claimed,) = _claims(redis_url, (8, {}), room=Room(start=2, queue=5))
    assert claimed == [first.id] * 2 + [second.id] * 2 + [third.id] * 2 + [first.id] * 2


def test_a_claim_moves_timers_written_before_per_subscription_timers(runtime: Runtime, redis_url: str) -> None:
    subscription = _subscribe(runtime, "https://hooks.example.com/old")
    _commit_runs(runtime, "legacy_", 3)
    timers = keys.webhook_timers(subscription.id)
    old = {f"{keys.LEGACY_TIMER_PREFIX}{d.decode()}": 5 for d in runtime.redis.zrange(timers, 0, -1)}  # type: ignore[union-attr]
    runtime.redis.delete(timers, keys.WEBHOOK_READY)
    runtime.redis.zadd(keys.LEGACY_WEBHOOK_TIMERS, {**old, "webhook:not-a-delivery-id": 5})  # as 0.2 left them

    assert _claims(redis_url, (2, {})) == [[subscription.id] * 2]  # moved, then claimed
    assert runtime.redis.exists(keys.LEGACY_WEBHOOK_TIMERS) == 0  # a member naming no subscription is let go
    assert runtime.redis.zcount(timers, "-inf", 5) == 1  # the third, due as it was
    assert runtime.redis.zcard(timers) == 3


def test_the_claim_script_finds_the_subscription_in_a_legacy_timer_member(runtime: Runtime) -> None:
    subscription = Subscription(account="default", url="https://hooks.example.com/x")
    transition = runtime.store.history(_commit_runs(runtime, "p_q_", 1)[0])[0]
    member = keys.LEGACY_TIMER_PREFIX + delivery_id(subscription.id, transition, 1_700_000_000_000)
    found = runtime.redis.eval("return string.match(ARGV[1], ARGV[2])", 0, member, SUBSCRIPTION_IN_LEGACY_TIMER)
    assert found == subscription.id.encode()
