"""`runstate.Client` against a real `runstate serve` and worker: publish with the typed event
builders, read runs, steps and history back, find a thread's runs, and name every refusal."""

from decimal import Decimal

import pytest

import runstate
from runstate import events
from tests.support.processes import wait_until
from tests.support.servekit import serving

pytestmark = pytest.mark.integration


def test_published_events_read_back_as_a_run_with_its_steps_and_history(redis_url: str) -> None:
    with serving(redis_url) as served, runstate.Client(served.url, served.token) as client:
        accepted = client.publish(
            [
                events.run_started("run_c1", thread_id="thread_9", runnable_id="support-bot"),
                events.step_created("run_c1", "s1", type="tool_calls", name="lookup"),
                events.step_completed(
                    "run_c1",
                    "s2",
                    parent_step_id="s1",
                    model="gpt-4o",
                    usage={"prompt_tokens": 100, "completion_tokens": 20},
                    cost_usd=Decimal("0.000123456789"),
                ),
                events.step_completed("run_c1", "s1"),
                events.run_completed("run_c1", outputs={"answer": "42"}),
            ]
        )
        wait_until(lambda: (client.run("run_c1") or {}).get("status") == "completed")

        run = client.run("run_c1")
        steps = client.steps("run_c1")
        history = client.history("run_c1")
        found = client.find_runs(thread_id="thread_9")
        elsewhere = client.find_runs(thread_id="thread_other")
        missing = client.run("run_nobody")

    assert accepted == 5
    assert run is not None
    assert (run["status"], run["total_input_tokens"], run["total_output_tokens"]) == ("completed", 100, 20)
    assert run["total_token_cost_usd"] == 0.000123456789
    assert [(s["id"], s["type"], s["name"], s["parent_step_id"], s["status"]) for s in steps] == [
        ("s1", "tool_calls", "lookup", None, "completed"),
        ("s2", "message_creation", None, "s1", "completed"),
    ]
    assert [(h["id"], h["to"], h.get("parent_step_id")) for h in history if h["object"] == "step"] == [
        ("s1", "in_progress", None),
        ("s2", "in_progress", "s1"),
        ("s2", "completed", "s1"),
        ("s1", "completed", None),
    ]
    assert [r["id"] for r in found] == ["run_c1"]
    assert (elsewhere, missing) == ([], None)


def test_refused_events_raise_one_error_naming_each_and_a_bad_token_one_request_failure(redis_url: str) -> None:
    good = events.run_started("run_c2")
    bad_usage = events.step_completed("run_c2", "s1", usage={"prompt_tokens": -1})
    with serving(redis_url) as served, runstate.Client(served.url, served.token, batch_size=2) as client:
        with pytest.raises(runstate.EventsRefused) as refused:
            client.publish([good, bad_usage, "not json", {"id": "e9", "type": "run.finished", "run_id": "run_c2"}])
        wait_until(lambda: client.run("run_c2") is not None)
        with runstate.Client(served.url, "tok_wrong") as stranger, pytest.raises(runstate.RequestFailed) as failed:
            stranger.publish([events.run_started("run_c3")])

    assert refused.value.accepted == 1
    assert [(r.index, r.event_id) for r in refused.value.refusals] == [(1, bad_usage["id"]), (2, None), (3, "e9")]
    reasons = [r.reason for r in refused.value.refusals]
    assert reasons[0].startswith("data.usage.prompt_tokens: ")
    assert reasons[1].startswith("not sent: ")
    assert reasons[2].startswith("type: 'run.finished' is not an event type")
    assert (failed.value.status, failed.value.code) == (401, "AUTHORIZATION_ERROR")
