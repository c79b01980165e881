"""A LangGraph agent (fake chat model, a tool, a human approval by `interrupt()`) traced by
`RunstateCallbackHandler` into a real `runstate serve` and worker: interrupted in one process,
resumed in a second one from a shared SQLite checkpointer, it is one run that waits, then
continues to `completed`."""

import subprocess
import sys
from decimal import Decimal
from pathlib import Path

import genai_prices
import pytest

import runstate
from tests.support import langgraph_agent
from tests.support.paths import ROOT
from tests.support.processes import wait_until
from tests.support.servekit import Served, serving

pytestmark = pytest.mark.integration


def _process(phase: str, served: Served, checkpoints: Path, thread: str) -> None:
    """One process of the agent's life: `start` until the interrupt, or `resume` to the end."""
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "tests.support.langgraph_agent",
            phase,
            served.url,
            served.token,
            str(checkpoints),
            thread,
        ],
        cwd=ROOT,
        capture_output=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr.decode()[-3000:]


def _status(client: runstate.Client, thread: str) -> list[str]:
    return [run["status"] for run in client.find_runs(thread_id=thread)]


def _priced(prompt: int, completion: int) -> Decimal:
    usage = genai_prices.Usage(input_tokens=prompt, output_tokens=completion)
    return genai_prices.calc_price(usage, langgraph_agent.MODEL).total_price


def test_an_interrupted_thread_resumed_in_another_process_is_one_run_that_waits_then_completes(
    redis_url: str, tmp_path: Path
) -> None:
    checkpoints = tmp_path / "checkpoints.sqlite"
    with serving(redis_url) as served, runstate.Client(served.url, served.token) as client:
        _process("start", served, checkpoints, "thread_7")
        wait_until(lambda: _status(client, "thread_7") == ["waiting"])
        [waiting] = client.find_runs(thread_id="thread_7")
        steps_before = client.steps(waiting["id"])

        _process("resume", served, checkpoints, "thread_7")
        wait_until(lambda: _status(client, "thread_7") == ["completed"])
        run, steps, history = client.run(waiting["id"]), client.steps(waiting["id"]), client.history(waiting["id"])

    assert [(s["type"], s["status"]) for s in steps_before] == [("message_creation", "completed")]
    assert run is not None
    assert (run["status"], run["runnable_id"]) == ("completed", "LangGraph")
    assert [h["to"] for h in history if h["object"] == "run"] == ["running", "waiting", "running", "completed"]
    assert [(s["type"], s["name"], s["status"], s["model"]) for s in steps] == [
        ("message_creation", None, "completed", langgraph_agent.MODEL),
        ("tool_calls", "lookup", "completed", None),
        ("message_creation", None, "completed", langgraph_agent.MODEL),
    ]
    call = steps[1]["step_details"]["tool_calls"][0]
    assert (call["id"], call["function"]["output"]) == ("call_1", "order A7: ships Monday")
    assert (run["total_input_tokens"], run["total_output_tokens"]) == (280, 37)
    assert run["total_token_cost_usd"] == float(_priced(120, 15) + _priced(160, 22))
