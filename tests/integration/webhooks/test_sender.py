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
from worker.store.sending import SUBSCRIPTION_IN_TIMER, Room, Sending
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
        wait_until(lambda: runtime.redis.zcard(keys.WEBHOOK_TIMERS) == 0, timeout=30)
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


def test_the_claim_script_finds_the_subscription_in_a_timer_member(runtime: Runtime) -> None:
    subscription = Subscription(account="default", url="https://hooks.example.com/x")
    transition = runtime.store.history(_commit_runs(runtime, "p_q_", 1)[0])[0]
    member = keys.delivery_timer(delivery_id(subscription.id, transition, 1_700_000_000_000))
    found = runtime.redis.eval("return string.match(ARGV[1], ARGV[2])", 0, member, SUBSCRIPTION_IN_TIMER)
    assert found == subscription.id.encode()


def test_a_claim_looks_past_a_full_subscriptions_backlog_to_the_others(runtime: Runtime, redis_url: str) -> None:
    ahead, behind = (_subscribe(runtime, f"https://hooks.example.com/{name}") for name in ("ahead", "behind"))
    _commit_runs(runtime, "backlog_", 30)  # 30 deliveries for each subscription
    timers: list[bytes] = runtime.redis.zrange(keys.WEBHOOK_TIMERS, 0, -1)  # type: ignore[assignment]
    runtime.redis.zadd(keys.WEBHOOK_TIMERS, {m: 1 if ahead.id.encode() in m else 2 for m in timers})

    async def two_claims() -> list[list[str]]:
        client = AsyncRedis.from_url(redis_url)
        sending, room = Sending(client, retention=60), Room(left=5, defer_ms=60_000)
        try:  # each claim sees 20 due timers; the first sees only the subscription ahead's
            first = await sending.claim(20, 30_000, 20, {}, room)
            second = await sending.claim(20, 30_000, 20, {ahead.id: Room(left=0, defer_ms=60_000)}, room)
        finally:
            await client.aclose()
        return [[d.subscription_id for _, d in c.deliveries if d is not None] for c in (first, second)]

    first, second = asyncio.run(two_claims())
    assert first == [ahead.id] * 5  # its room; the other 15 it saw are pushed back out of the way
    assert second == [behind.id] * 5  # so the next claim reaches the subscription behind
    # of 60: 10 claimed, 15 + 10 of the one ahead and 5 behind past their room pushed back; 20 unseen
    assert runtime.redis.zcount(keys.WEBHOOK_TIMERS, "-inf", 3) == 20
