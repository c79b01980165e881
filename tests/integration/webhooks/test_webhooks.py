"""Signed status-change webhooks to a real receiver on loopback, verified with `standardwebhooks`."""

import asyncio
import json
import signal
import subprocess
import sys
import time
from collections.abc import Iterator

import orjson
import pytest
from standardwebhooks.webhooks import Webhook

from tests.support.processes import cli_env, runstate, wait_until
from tests.support.publishing import held
from tests.support.receiver import Receiver, receiver
from worker.runtime import Runtime
from worker.settings import Settings
from worker.store import keys
from worker.store.keys import ref
from worker.store.subscriptions import Subscription, Subscriptions
from worker.webhooks.sender import deliver

FAST = {
    "RUNSTATE_WEBHOOK_ALLOW_PRIVATE": "1",
    "RUNSTATE_WEBHOOK_RETRY_SCHEDULE": "0.05,0.05",
    "RUNSTATE_WEBHOOK_TIMEOUT": "2",
}


@pytest.fixture
def hooks(monkeypatch: pytest.MonkeyPatch, redis_url: str) -> Iterator[Receiver]:
    for name, value in FAST.items():
        monkeypatch.setenv(name, value)
    with receiver() as r:
        yield r


def _add(redis_url: str, url: str, *args: str) -> dict[str, str]:
    added = runstate(["webhooks", "add", url, *args], redis_url, **FAST)
    assert added.returncode == 0, added.stderr
    return orjson.loads(added.stdout)  # type: ignore[no-any-return]


def _deliver(runtime: Runtime) -> None:
    asyncio.run(deliver(Settings(), asyncio.Event(), until_idle=True))  # REDIS_URL: the `runtime` fixture's


def _publish_and_apply(runtime: Runtime, *events: dict[str, object]) -> None:
    assert runtime.publisher.publish_lines([orjson.dumps(e).decode() for e in events]).errors == []
    runtime.processor.drain(held(runtime, *{str(e["run_id"]) for e in events}))


def _verified(secret: str, request: object) -> dict[str, object]:
    return Webhook(secret).verify(request.body, request.headers)  # type: ignore[attr-defined, no-any-return]


RUN = [
    {"id": "a", "type": "run.started", "run_id": "r_hook", "data": {"account_id": "acct_1"}},
    {"id": "b", "type": "step.created", "run_id": "r_hook", "step_id": "s1"},
    {"id": "c", "type": "step.created", "run_id": "r_hook", "step_id": "s2"},
    {"id": "d", "type": "step.completed", "run_id": "r_hook", "step_id": "s1"},
    {"id": "e", "type": "run.cancelled", "run_id": "r_hook"},
]


def test_every_transition_is_delivered_signed_with_its_payload(
    hooks: Receiver, redis_url: str, runtime: Runtime
) -> None:
    sub = _add(redis_url, hooks.url("/all"), "--account", "acct_1")
    _publish_and_apply(runtime, *RUN)
    _deliver(runtime)
    got = [_verified(sub["secret"], r) for r in hooks.on("/all")]
    history = runtime.store.history(ref("acct_1", "r_hook"))
    assert len(got) == len(history) == 6
    by_n = {g["data"]["transition"]: g for g in got}  # type: ignore[index]
    for t in history:
        body = by_n[t.n]
        assert body["type"] == f"{t.object}.status_changed"
        assert body["data"] == {
            "object": t.object,
            "status": t.to,
            "previous_status": t.from_,
            "account_id": "acct_1",  # with run_id, what identifies the run
            "run_id": "r_hook",
            "step_id": t.id if t.object == "step" else None,
            "event_id": t.event_id,
            "transition": t.n,
        }
    cascade = by_n[6]["data"]
    assert (cascade["object"], cascade["step_id"], cascade["status"]) == ("step", "s2", "cancelled")  # type: ignore[index]
    ids = [r.headers["webhook-id"] for r in hooks.on("/all")]
    assert len(set(ids)) == 6


def test_filters_and_accounts_decide_who_gets_what(hooks: Receiver, redis_url: str, runtime: Runtime) -> None:
    _add(redis_url, hooks.url("/completed"), "--account", "acct_1", "--events", "run.cancelled,step.completed")
    _add(redis_url, hooks.url("/steps"), "--account", "acct_1", "--events", "step.*")
    _add(redis_url, hooks.url("/other"), "--account", "acct_2")
    _publish_and_apply(runtime, *RUN)
    _deliver(runtime)
    statuses = {p: sorted(json.loads(r.body)["data"]["status"] for r in hooks.on(p)) for p in ("/completed", "/steps")}
    assert statuses == {
        "/completed": ["cancelled", "completed"],
        "/steps": ["cancelled", "completed", "in_progress", "in_progress"],
    }
    assert hooks.on("/other") == []


def test_retries_keep_the_webhook_id_and_sign_each_attempt_afresh(
    hooks: Receiver, redis_url: str, runtime: Runtime
) -> None:
    hooks.answers["/flaky"] = [500, 503, 200]
    sub = _add(redis_url, hooks.url("/flaky"), "--account", "acct_1", "--events", "run.cancelled")
    _publish_and_apply(runtime, *RUN)
    _deliver(runtime)
    attempts = hooks.on("/flaky")
    assert len(attempts) == 3
    assert len({a.headers["webhook-id"] for a in attempts}) == 1
    assert len({a.body for a in attempts}) == 1
    assert [_verified(sub["secret"], a)["data"]["status"] for a in attempts] == ["cancelled"] * 3  # type: ignore[index]
    assert {k: v for k, v in runtime.store.stats().items() if k.startswith("webhook:")} == {
        "webhook:failed": 2,
        "webhook:delivered": 1,
    }


def test_after_the_last_attempt_a_dead_letter_keeps_everything_and_replay_sends_it_again(
    hooks: Receiver, redis_url: str, runtime: Runtime
) -> None:
    hooks.answers["/down"] = [500, 500, 500, 200]
    sub = _add(redis_url, hooks.url("/down"), "--account", "acct_1", "--events", "run.cancelled")
    _publish_and_apply(runtime, *RUN)
    _deliver(runtime)
    dead = [orjson.loads(line) for line in runstate(["webhooks", "dead"], redis_url).stdout.splitlines()]
    assert len(dead) == 1
    assert (dead[0]["subscription_id"], dead[0]["url"]) == (sub["id"], hooks.url("/down"))
    assert [a["status"] for a in dead[0]["attempts"]] == [500, 500, 500]
    assert json.loads(dead[0]["payload"])["data"]["status"] == "cancelled"

    assert runstate(["webhooks", "replay", dead[0]["delivery_id"]], redis_url).returncode == 0
    _deliver(runtime)
    attempts = hooks.on("/down")
    assert [a.headers["webhook-id"] for a in attempts] == [dead[0]["delivery_id"]] * 4
    assert runstate(["webhooks", "dead"], redis_url).stdout == b""


def test_410_gone_disables_the_subscription(hooks: Receiver, redis_url: str, runtime: Runtime) -> None:
    hooks.answers["/gone"] = [410]
    sub = _add(redis_url, hooks.url("/gone"), "--account", "acct_1", "--events", "run.cancelled")
    _publish_and_apply(runtime, *RUN)
    _deliver(runtime)
    listed = [orjson.loads(line) for line in runstate(["webhooks", "list"], redis_url).stdout.splitlines()]
    assert [(s["id"], s["enabled"], s["disabled_reason"]) for s in listed] == [
        (sub["id"], False, "the endpoint answered 410 Gone")
    ]
    assert sub["secret"] not in json.dumps(listed)
    again = [{**e, "run_id": "r_hook_2"} for e in RUN]
    _publish_and_apply(runtime, *again)
    _deliver(runtime)
    assert len(hooks.on("/gone")) == 1  # nothing is sent to a disabled subscription
    assert {k: v for k, v in runtime.store.stats().items() if k.startswith("webhook:")} == {"webhook:gone": 1}


def test_redirects_are_not_followed(hooks: Receiver, redis_url: str, runtime: Runtime) -> None:
    hooks.answers["/moved"] = [302]
    _add(redis_url, hooks.url("/moved"), "--account", "acct_1", "--events", "run.cancelled")
    _publish_and_apply(runtime, *RUN)
    _deliver(runtime)
    dead = [orjson.loads(line) for line in runstate(["webhooks", "dead"], redis_url).stdout.splitlines()]
    assert [a["status"] for a in dead[0]["attempts"]] == [302, 302, 302]


def test_a_hanging_endpoint_does_not_hold_back_another(
    hooks: Receiver, redis_url: str, runtime: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RUNSTATE_WEBHOOK_TIMEOUT", "8")
    hooks.answers["/hang"] = ["hang", 200]
    _add(redis_url, hooks.url("/hang"), "--account", "acct_1", "--events", "run.cancelled")
    _add(redis_url, hooks.url("/fast"), "--account", "acct_1", "--events", "run.cancelled")
    _publish_and_apply(runtime, *RUN)
    started = time.monotonic()
    _deliver(runtime)
    fast, hung = hooks.on("/fast"), hooks.on("/hang")
    assert len(fast) == 1
    assert fast[0].at - started < 4  # far inside the 8 s the hanging attempt is allowed
    assert len(hung) == 2  # timed out once, then delivered on the retry
    assert hung[1].at - hung[0].at >= 8


def test_an_outbox_entry_survives_a_sigkill_between_commit_and_send(
    hooks: Receiver, redis_url: str, runtime: Runtime
) -> None:
    hooks.answers["/later"] = ["hang", 200]
    _add(redis_url, hooks.url("/later"), "--account", "acct_1", "--events", "run.cancelled")
    _publish_and_apply(runtime, *RUN)  # committed: the delivery is in the outbox, nothing sent yet
    proc = subprocess.Popen(
        [sys.executable, "-m", "worker", "webhooks", "deliver"],
        env=cli_env(redis_url, **FAST),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    wait_until(lambda: len(hooks.on("/later")) == 1, timeout=30)  # mid-send: the endpoint hangs
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    took = wait_until(lambda: (_deliver(runtime), len(hooks.on("/later")) == 2)[1], timeout=30, every=0.5)
    assert took < 15  # the attempt's lease (timeout + 5 s) ran out and another process sent it
    first, second = hooks.on("/later")
    assert first.headers["webhook-id"] == second.headers["webhook-id"]


def test_webhooks_add_refuses_private_targets_naming_the_reason(redis_url: str) -> None:
    refused = runstate(["webhooks", "add", "http://169.254.169.254/latest/meta-data"], redis_url)
    assert refused.returncode != 0
    assert "169.254.169.254" in refused.stderr.decode()
    assert runstate(["webhooks", "list"], redis_url).stdout == b""


def test_a_worker_that_commits_transitions_fills_the_outbox(hooks: Receiver, redis_url: str, runtime: Runtime) -> None:
    _add(redis_url, hooks.url("/w"), "--account", "acct_1", "--events", "run.*")
    assert runtime.publisher.publish_lines([orjson.dumps(e).decode() for e in RUN]).errors == []
    assert runstate(["worker", "--burst"], redis_url).returncode == 0
    assert runstate(["webhooks", "deliver", "--until-idle"], redis_url, **FAST).returncode == 0
    assert sorted(json.loads(r.body)["data"]["status"] for r in hooks.on("/w")) == ["cancelled", "running"]


def test_deadline_transitions_are_delivered_too(hooks: Receiver, redis_url: str, runtime: Runtime) -> None:
    _add(redis_url, hooks.url("/deadline"), "--account", "acct_1", "--events", "run.timeout,step.expired")
    start = runtime.store.now_ms() / 1000 - 10
    _publish_and_apply(
        runtime,
        {
            "id": "a",
            "type": "run.started",
            "run_id": "r_dl",
            "occurred_at": start,
            "data": {"account_id": "acct_1", "timeout_seconds": 2},
        },
        {"id": "b", "type": "step.created", "run_id": "r_dl", "step_id": "s1", "occurred_at": start},
    )
    _deliver(runtime)
    bodies = sorted(
        (b["data"]["object"], b["data"]["status"]) for b in (json.loads(r.body) for r in hooks.on("/deadline"))
    )
    assert bodies == [("run", "timeout"), ("step", "expired")]


def test_a_subscription_failing_longer_than_disable_after_is_disabled(
    hooks: Receiver, redis_url: str, runtime: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RUNSTATE_WEBHOOK_DISABLE_AFTER", "0.05")
    hooks.answers["/broken"] = [500]
    sub = _add(redis_url, hooks.url("/broken"), "--account", "acct_1", "--events", "run.cancelled")
    _publish_and_apply(runtime, *RUN)
    _deliver(runtime)
    listed = [orjson.loads(line) for line in runstate(["webhooks", "list"], redis_url).stdout.splitlines()]
    assert [(s["id"], s["enabled"]) for s in listed] == [(sub["id"], False)]
    assert listed[0]["disabled_reason"].startswith("no success for")


def test_the_ssrf_guard_runs_again_at_every_attempt(
    hooks: Receiver, redis_url: str, runtime: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    _add(redis_url, hooks.url("/private"), "--account", "acct_1", "--events", "run.cancelled")  # allowed when added
    monkeypatch.delenv("RUNSTATE_WEBHOOK_ALLOW_PRIVATE")
    _publish_and_apply(runtime, *RUN)
    _deliver(runtime)
    assert hooks.on("/private") == []
    dead = [orjson.loads(line) for line in runstate(["webhooks", "dead"], redis_url).stdout.splitlines()]
    assert [a["error"].startswith("unsafe target: ") and "loopback" in a["error"] for a in dead[0]["attempts"]] == [
        True
    ] * 3


def test_the_readme_receiver_snippet_verifies_a_real_delivery(
    hooks: Receiver, redis_url: str, runtime: Runtime
) -> None:
    from tests.support.paths import ROOT

    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    snippet = readme.split("A receiver verifies a delivery")[1].split("```python\n")[1].split("```")[0]
    sub = _add(redis_url, hooks.url("/readme"), "--account", "acct_1", "--events", "run.cancelled")
    _publish_and_apply(runtime, *RUN)
    _deliver(runtime)
    namespace: dict[str, object] = {}
    exec(compile(snippet.replace("whsec_…", sub["secret"]), "README.md", "exec"), namespace)  # noqa: S102
    (request,) = hooks.on("/readme")
    received = namespace["receive"](request.body, request.headers)  # type: ignore[operator]
    assert received["data"]["status"] == "cancelled"
    with pytest.raises(PermissionError):
        namespace["receive"](request.body.replace(b"cancelled", b"completed"), request.headers)  # type: ignore[operator]


def test_a_replay_starts_the_retry_schedule_again(hooks: Receiver, redis_url: str, runtime: Runtime) -> None:
    hooks.answers["/never"] = [500]
    _add(redis_url, hooks.url("/never"), "--account", "acct_1", "--events", "run.cancelled")
    _publish_and_apply(runtime, *RUN)
    _deliver(runtime)
    assert runstate(["webhooks", "replay", "--all"], redis_url).returncode == 0
    _deliver(runtime)
    (dead,) = [orjson.loads(line) for line in runstate(["webhooks", "dead"], redis_url).stdout.splitlines()]
    assert [a["status"] for a in dead["attempts"]] == [500] * 6  # three, then three more after the replay


def test_enable_brings_back_a_subscription_that_410_disabled(hooks: Receiver, redis_url: str, runtime: Runtime) -> None:
    hooks.answers["/back"] = [410, 200]
    sub = _add(redis_url, hooks.url("/back"), "--account", "acct_1", "--events", "run.cancelled")
    _publish_and_apply(runtime, *RUN)
    _deliver(runtime)
    enabled = runstate(["webhooks", "enable", sub["id"]], redis_url)
    assert enabled.returncode == 0, enabled.stderr
    assert orjson.loads(enabled.stdout)["enabled"] is True
    assert runstate(["webhooks", "replay", "--all"], redis_url).returncode == 0
    _deliver(runtime)
    first, second = hooks.on("/back")
    assert first.headers["webhook-id"] == second.headers["webhook-id"]
    assert runstate(["webhooks", "dead"], redis_url).stdout == b""


def test_updating_a_removed_subscription_does_not_bring_it_back(
    hooks: Receiver, redis_url: str, runtime: Runtime
) -> None:
    from worker.store.subscriptions import Subscriptions

    sub = _add(redis_url, hooks.url("/removed"), "--account", "acct_1")
    assert runstate(["webhooks", "remove", sub["id"]], redis_url).returncode == 0
    assert Subscriptions(runtime.redis).update(sub["id"], failing_since=1) is None
    assert list(Subscriptions(runtime.redis).all()) == []


def test_an_endpoint_that_trickles_its_answer_is_cut_off_at_the_attempt_timeout(
    hooks: Receiver, redis_url: str, runtime: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RUNSTATE_WEBHOOK_TIMEOUT", "1")
    monkeypatch.setenv("RUNSTATE_WEBHOOK_RETRY_SCHEDULE", "0.05")
    hooks.answers["/drip"] = ["drip", 200]
    _add(redis_url, hooks.url("/drip"), "--account", "acct_1", "--events", "run.cancelled")
    _publish_and_apply(runtime, *RUN)
    _deliver(runtime)
    first, second = hooks.on("/drip")
    assert second.at - first.at < 3  # the first attempt ended at its 1 s timeout, not after 10 s of trickle
    assert first.headers["webhook-id"] == second.headers["webhook-id"]
    assert runstate(["webhooks", "dead"], redis_url).stdout == b""


def test_a_subscription_added_after_a_worker_read_them_gets_every_later_transition(
    hooks: Receiver, redis_url: str, runtime: Runtime
) -> None:
    _publish_and_apply(runtime, RUN[0])  # this processor has read the subscriptions: none yet
    _add(redis_url, hooks.url("/late"), "--account", "acct_1")
    _publish_and_apply(runtime, *RUN[1:])
    _deliver(runtime)
    transitions = sorted(json.loads(r.body)["data"]["transition"] for r in hooks.on("/late"))
    assert transitions == [2, 3, 4, 5, 6]  # all but the run's creation, which came before it


def test_a_commit_with_hundreds_of_deliveries_schedules_every_one(runtime: Runtime) -> None:
    subscriptions = Subscriptions(runtime.redis)
    for n in range(100):
        subscriptions.save(Subscription(account="acct_1", url=f"https://hooks.example.com/{n}"))

    _publish_and_apply(runtime, *RUN)  # 6 status changes (the cancel cascades to s2) in one commit

    timers = [t for s in subscriptions.all() for t in runtime.redis.zrange(keys.webhook_timers(s.id), 0, -1)]
    assert len(timers) == 600
    assert all(runtime.redis.exists(keys.delivery(t.decode())) for t in timers)
    assert runtime.redis.zcard(keys.WEBHOOK_READY) == 100  # every subscription, due now
