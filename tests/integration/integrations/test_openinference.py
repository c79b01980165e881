"""OpenInference's LangChain instrumentation on a LangGraph agent (fake chat model, one tool),
exported by the OpenTelemetry SDK's OTLP exporter to `POST /v1/traces` of a real `runstate serve`
and worker: the trace is a completed run with its model calls and tool as steps."""

from collections.abc import Iterator

import pytest
from openinference.instrumentation.langchain import LangChainInstrumentor
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor

import runstate
from tests.support import langgraph_agent
from tests.support.processes import wait_until
from tests.support.servekit import serving

pytestmark = pytest.mark.integration


@pytest.fixture
def instrumented() -> Iterator[TracerProvider]:
    provider = TracerProvider()
    instrumentor = LangChainInstrumentor()
    instrumentor.instrument(tracer_provider=provider)
    yield provider
    instrumentor.uninstrument()  # it patches LangChain globally: leave nothing behind
    provider.shutdown()


def test_an_instrumented_langgraph_agent_is_a_completed_run_with_its_model_calls_and_tool(
    redis_url: str, instrumented: TracerProvider
) -> None:
    with serving(redis_url) as served, runstate.Client(served.url, served.token) as client:
        exporter = OTLPSpanExporter(endpoint=f"{served.url}/v1/traces", headers={"authorization": "Bearer tok_a"})
        instrumented.add_span_processor(SimpleSpanProcessor(exporter))
        answer = langgraph_agent.graph(review=False).invoke({"messages": [("user", "When does order A7 ship?")]})
        wait_until(lambda: [run["status"] for run in client.find_runs()] == ["completed"])
        [run] = client.find_runs()
        steps = client.steps(run["id"])

    assert answer["messages"][-1].content == "The order ships on Monday."
    assert len(run["id"]) == 32  # the trace id
    assert [(s["type"], s["name"], s["status"]) for s in steps] == [
        ("message_creation", None, "completed"),
        ("tool_calls", "lookup", "completed"),
        ("message_creation", None, "completed"),
    ]
    assert (run["total_input_tokens"], run["total_output_tokens"]) == (280, 37)
    output = steps[1]["step_details"]["tool_calls"][0]["function"]["output"]
    assert '"content": "order A7: ships Monday"' in output  # OpenInference records the whole ToolMessage
