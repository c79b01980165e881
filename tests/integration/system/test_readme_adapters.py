"""README "Connect your agents": the OpenAI Agents SDK and LangGraph recipes, as written (the
host swapped for a real `runstate serve`), on the fake model of each adapter's own tests."""

import asyncio
import re
from collections.abc import Iterator
from typing import Any

import pytest
from agents import Runner, set_trace_processors
from langgraph.checkpoint.memory import InMemorySaver
from langgraph.types import Command

import runstate
from tests.support import fake_openai, langgraph_agent
from tests.support.paths import ROOT
from tests.support.processes import wait_until
from tests.support.servekit import serving

pytestmark = [
    pytest.mark.integration,
    # the openai client leaves httpx's auth generator to the garbage collector, which may close it
    # after the loop that ran the agent ended: a warning about their code, not about runstate's
    pytest.mark.filterwarnings("ignore:asynchronous generator .* was scheduled after:ResourceWarning"),
]
README = (ROOT / "README.md").read_text(encoding="utf-8")
SECTION = README[README.index("## Connect your agents\n") : README.index("### OTLP trace ingest\n")]


def recipe(imports: str, url: str) -> str:
    """The python block that imports `imports`, pointed at `url`."""
    [found] = [code for code in re.findall(r"```python\n(.*?)```", SECTION, re.S) if imports in code]
    return str(found).replace("http://localhost:8000", url)


@pytest.fixture
def no_trace_processors() -> Iterator[None]:
    set_trace_processors([])  # not the SDK's default exporter to OpenAI: only what the recipe adds
    yield
    set_trace_processors([])


def _statuses(client: runstate.Client, **where: str) -> list[str]:
    return [run["status"] for run in client.find_runs(**where)]


@pytest.mark.usefixtures("no_trace_processors")
def test_the_readme_openai_agents_recipe_works_as_written(redis_url: str) -> None:
    with serving(redis_url) as served, runstate.Client(served.url, served.token) as client:
        exec(recipe("openai_agents", served.url), {})  # noqa: S102 - the README's own code
        asyncio.run(Runner.run(fake_openai.agent(), "When does order A7 ship?"))  # closes its loop, unlike run_sync
        wait_until(lambda: _statuses(client) == ["completed"])
        [run] = client.find_runs()
        steps = client.steps(run["id"])

    assert run["id"].startswith("trace_")
    assert [s["type"] for s in steps] == ["message_creation", "tool_calls", "message_creation"]
    assert (run["total_input_tokens"], run["total_output_tokens"]) == (280, 37)


def test_the_readme_langgraph_recipe_waits_at_the_interrupt_and_resumes_the_same_run(redis_url: str) -> None:
    graph = langgraph_agent.graph(InMemorySaver())
    asked: dict[str, Any] = {"messages": [("user", "When does order A7 ship?")]}
    with serving(redis_url) as served, runstate.Client(served.url, served.token) as client:
        exec(recipe("langchain", served.url), {"graph": graph, "inputs": asked})  # noqa: S102
        wait_until(lambda: _statuses(client, thread_id="thread_1") == ["waiting"])
        exec(recipe("langchain", served.url), {"graph": graph, "inputs": Command(resume="yes")})  # noqa: S102
        wait_until(lambda: _statuses(client, thread_id="thread_1") == ["completed"])
        [run] = client.find_runs(thread_id="thread_1")
        steps = client.steps(run["id"])

    assert [s["type"] for s in steps] == ["message_creation", "tool_calls", "message_creation"]
    assert (run["total_input_tokens"], run["total_output_tokens"]) == (280, 37)
    assert run["total_token_cost_usd"] > 0  # priced by genai-prices: the fake names a real model
