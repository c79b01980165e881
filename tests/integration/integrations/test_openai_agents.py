"""The OpenAI Agents SDK, its model's HTTP transport mocked, traced by `RunstateTracingProcessor`
into a real `runstate serve` and worker: the trace is a run, model calls and tools its steps."""

import asyncio
from collections.abc import Iterator
from decimal import Decimal

import genai_prices
import pytest
from agents import Runner, set_trace_processors
from openai import BadRequestError

import runstate
from runstate.integrations.openai_agents import RunstateTracingProcessor
from tests.support import fake_openai
from tests.support.processes import wait_until
from tests.support.servekit import serving

pytestmark = [
    pytest.mark.integration,
    # the openai client leaves httpx's auth generator to the garbage collector, which may close it
    # after the loop that ran the agent ended: a warning about their code, not about runstate's
    pytest.mark.filterwarnings("ignore:asynchronous generator .* was scheduled after:ResourceWarning"),
]


@pytest.fixture(autouse=True)
def _only_our_processor() -> Iterator[None]:
    yield
    set_trace_processors([])  # the SDK's processors are global: leave none behind for other tests


def _priced(prompt: int, completion: int) -> Decimal:
    usage = genai_prices.Usage(input_tokens=prompt, output_tokens=completion)
    return genai_prices.calc_price(usage, fake_openai.MODEL).total_price


def _the_finished_run(client: runstate.Client) -> str:
    """The id of the account's only run, once it finished (the SDK makes up the trace id)."""
    wait_until(lambda: [run["status"] for run in client.find_runs()] in (["completed"], ["failed"]))
    [run] = client.find_runs()
    return str(run["id"])


def test_an_agent_run_with_a_tool_call_is_a_completed_run_of_three_priced_steps(redis_url: str) -> None:
    with serving(redis_url) as served, runstate.Client(served.url, served.token) as client:
        processor = RunstateTracingProcessor(client)
        set_trace_processors([processor])
        result = asyncio.run(
            Runner.run(fake_openai.agent(), "When does order A7 ship?")
        )  # closes its loop, unlike run_sync
        processor.shutdown()
        run_id = _the_finished_run(client)
        run, steps = client.run(run_id), client.steps(run_id)

    assert result.final_output == "The order ships on Monday."
    assert run is not None
    assert run_id.startswith("trace_")
    assert (run["status"], run["runnable_id"]) == ("completed", "Agent workflow")
    assert (run["total_input_tokens"], run["total_output_tokens"]) == (280, 37)
    assert run["total_token_cost_usd"] == float(_priced(120, 15) + _priced(160, 22))
    assert [(s["type"], s["name"], s["status"], s["model"]) for s in steps] == [
        ("message_creation", None, "completed", "gpt-4o-mini"),
        ("tool_calls", "lookup", "completed", None),
        ("message_creation", None, "completed", "gpt-4o-mini"),
    ]
    call = steps[1]["step_details"]["tool_calls"][0]["function"]
    assert call == {"name": "lookup", "arguments": '{"order": "A7"}', "output": "order A7: ships Monday"}
    assert [s["usage"]["prompt_tokens"] for s in steps if s["type"] == "message_creation"] == [120, 160]


def test_a_model_call_that_fails_fails_its_step_and_the_run(redis_url: str) -> None:
    with serving(redis_url) as served, runstate.Client(served.url, served.token) as client:
        processor = RunstateTracingProcessor(client)
        set_trace_processors([processor])
        with pytest.raises(BadRequestError, match="bad request"):
            asyncio.run(Runner.run(fake_openai.agent(fake_openai.failing), "When does order A7 ship?"))
        processor.shutdown()
        run_id = _the_finished_run(client)
        run, steps = client.run(run_id), client.steps(run_id)

    assert run is not None
    assert run["status"] == "failed"
    assert run["result"]["error"]["message"] == "MODEL_ERROR: Error getting response: Error code: 400 - bad request"
    assert [(s["type"], s["status"], s["error"]["code"]) for s in steps] == [
        ("message_creation", "failed", "MODEL_ERROR")
    ]
