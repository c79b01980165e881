"""OTLP trace ingest: the OpenTelemetry SDK's own exporters (protobuf and JSON) against a real
`runstate serve` and worker. Each checks statuses, step counts and kinds, tokens and costs."""

import time
from collections.abc import Iterator
from decimal import Decimal

import pytest
from opentelemetry.exporter.otlp.json.http.trace_exporter import OTLPSpanExporter as JsonExporter
from opentelemetry.exporter.otlp.proto.http import Compression
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter as ProtobufExporter
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExportResult
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import Status, StatusCode, set_span_in_context

import runstate
from statemachine.timefmt import rfc3339
from tests.support.processes import wait_until
from tests.support.servekit import Served, serving
from worker.drain.prices import GenaiPrices

pytestmark = pytest.mark.integration

S = 10**9
T0 = time.time_ns() // S * S  # now, in whole seconds: a run dated long ago would time out at once


def at(seconds: int) -> str | None:
    return rfc3339((T0 + seconds * S) // 10**6)


MINI = "gpt-4o-mini-2024-07-18"


@pytest.fixture
def served(redis_url: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[Served]:
    with serving(redis_url) as running:
        monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", running.url)
        monkeypatch.setenv("OTEL_EXPORTER_OTLP_HEADERS", f"authorization=Bearer {running.token}")
        yield running


def agent_trace(*, fail: bool = False) -> list[ReadableSpan]:
    """An agent's trace as the SDK records it: root agent span, a model call, a tool that calls a
    model, and an HTTP client span; in the order they end (children first, the root last)."""
    memory = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(memory))
    tracer = provider.get_tracer("agents-test")
    root = tracer.start_span(
        "invoke_agent support-bot",
        start_time=T0,
        attributes={
            "gen_ai.operation.name": "invoke_agent",
            "gen_ai.agent.name": "support-bot",
            "gen_ai.agent.id": "asst_7",
        },
    )
    under_root = set_span_in_context(root)
    chat = {"gen_ai.operation.name": "chat", "gen_ai.provider.name": "openai", "gen_ai.request.model": "gpt-4o-mini"}
    first = tracer.start_span("chat gpt-4o-mini", under_root, start_time=T0 + 1 * S, attributes=chat)
    first.set_attributes(
        {"gen_ai.response.model": MINI, "gen_ai.usage.input_tokens": 1000, "gen_ai.usage.output_tokens": 100}
    )
    first.end(end_time=T0 + 2 * S)
    tool = tracer.start_span(
        "execute_tool lookup",
        under_root,
        start_time=T0 + 3 * S,
        attributes={
            "gen_ai.operation.name": "execute_tool",
            "gen_ai.tool.name": "lookup",
            "gen_ai.tool.call.id": "call_1",
            "gen_ai.tool.call.arguments": '{"q": "invoice"}',
            "gen_ai.tool.call.result": "found 3",
        },
    )
    inner = tracer.start_span("chat", set_span_in_context(tool), start_time=T0 + 4 * S, attributes=chat)
    inner.set_attributes({"gen_ai.usage.input_tokens": 200, "gen_ai.usage.output_tokens": 10})
    if fail:
        inner.set_attribute("error.type", "rate_limit_exceeded")
        inner.set_status(Status(StatusCode.ERROR, "429 from the model"))
    inner.end(end_time=T0 + 5 * S)
    tracer.start_span("GET", set_span_in_context(tool), start_time=T0 + 5 * S).end(end_time=T0 + 6 * S)
    tool.end(end_time=T0 + 6 * S)
    if fail:
        root.set_status(Status(StatusCode.ERROR, "the model refused"))
    root.end(end_time=T0 + 7 * S)
    return list(memory.get_finished_spans())


def run_of(served: Served, run_id: str, status: str) -> tuple[dict[str, object], list[dict[str, object]]]:
    with runstate.Client(served.url, served.token) as client:
        wait_until(lambda: (client.run(run_id) or {}).get("status") == status)
        run = client.run(run_id)
        assert run is not None
        return run, client.steps(run_id)


def cost(model: str, prompt: int, completion: int) -> Decimal:
    from statemachine.events import Usage

    priced = GenaiPrices().price(
        model, "openai", Usage(prompt_tokens=prompt, completion_tokens=completion), T0 // 10**6
    )
    assert priced is not None
    return priced.cost_usd


def test_a_protobuf_export_makes_a_completed_run_with_nested_steps_usage_and_costs(served: Served) -> None:
    spans = agent_trace()
    run_id = format(spans[0].context.trace_id, "032x")

    result = ProtobufExporter(compression=Compression.Gzip).export(spans)  # one export, root included

    run, steps = run_of(served, run_id, "completed")
    assert result is SpanExportResult.SUCCESS
    assert (run["runnable_id"], run["created_at"], run["completed_at"]) == ("support-bot", at(0), at(7))
    assert (run["total_input_tokens"], run["total_output_tokens"]) == (1200, 110)
    assert Decimal(str(run["total_token_cost_usd"])) == cost(MINI, 1000, 100) + cost("gpt-4o-mini", 200, 10)
    by_name = {s["name"] or s["model"]: s for s in steps}
    tool_id = format(spans[-2].context.span_id, "016x")
    assert [(s["type"], s["status"], s["parent_step_id"]) for s in steps] == [  # in the order the spans started
        ("message_creation", "completed", None),
        ("tool_calls", "completed", None),
        ("message_creation", "completed", tool_id),
    ]
    assert by_name[MINI]["cost_source"] == "genai-prices " + GenaiPrices.version()
    assert by_name["lookup"]["step_details"] == {
        "type": "tool_calls",
        "tool_calls": [
            {
                "id": "call_1",
                "type": "function",
                "function": {"name": "lookup", "arguments": '{"q": "invoice"}', "output": "found 3"},
            }
        ],
    }


def test_a_json_export_span_by_span_root_last_dates_the_run_by_its_root_and_a_resend_changes_nothing(
    served: Served,
) -> None:
    spans = agent_trace(fail=True)
    run_id = format(spans[0].context.trace_id, "032x")
    exporter = JsonExporter()

    results = [exporter.export([span]) for span in spans]  # children first, the root last
    run, steps = run_of(served, run_id, "failed")
    again = exporter.export(spans)
    with runstate.Client(served.url, served.token) as client:
        wait_until(lambda: sum(1 for h in client.history(run_id) if h["event_type"] == "run.failed") == 1)
        unchanged = (client.run(run_id), client.steps(run_id))

    assert set(results) == {SpanExportResult.SUCCESS}
    assert again is SpanExportResult.SUCCESS
    assert (run["created_at"], run["failed_at"]) == (at(0), at(7))
    assert run["result"]["error"] == {"code": "INTERNAL_ERROR", "message": "ERROR: the model refused"}  # type: ignore[index]
    assert [(s["type"], s["status"]) for s in steps] == [
        ("message_creation", "completed"),
        ("message_creation", "failed"),
        ("tool_calls", "completed"),
    ]
    assert steps[1]["error"] == {"code": "rate_limit_exceeded", "message": "429 from the model"}
    assert (run["total_input_tokens"], run["total_output_tokens"]) == (1200, 110)
    assert unchanged == (run, steps)
