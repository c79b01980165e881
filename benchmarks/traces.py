"""Ingest throughput of POST /v1/traces (OTLP protobuf) against POST /v1/events, in one run.

The same work both ways: traces of one root agent span and four model-call spans (10 events a
trace), sent by one client to one `runstate serve`, that queues them (no worker drains here:
this measures the door, not the state machine). Prints spans/s and events/s for each.

    python3 -m benchmarks.traces [--exports 20] [--traces 100]
"""

import argparse
import time
from typing import Any

import httpx
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue

from benchmarks.common import free_port, redis_server, start_runstate
from worker.intake.otlp import map_request

SPANS_PER_TRACE = 5
NOW = time.time_ns()
CHAT = {"gen_ai.operation.name": "chat", "gen_ai.request.model": "gpt-4o-mini", "gen_ai.provider.name": "openai"}


def _attrs(values: dict[str, Any]) -> list[KeyValue]:
    made = []
    for key, value in values.items():
        any_value = AnyValue(int_value=value) if isinstance(value, int) else AnyValue(string_value=value)
        made.append(KeyValue(key=key, value=any_value))
    return made


def export(index: int, traces: int) -> ExportTraceServiceRequest:
    request = ExportTraceServiceRequest()
    scope = request.resource_spans.add().scope_spans.add()
    for trace in range(traces):
        trace_id = (index * traces + trace + 1).to_bytes(16, "big")
        root_id = (1).to_bytes(8, "big")
        root = scope.spans.add(trace_id=trace_id, span_id=root_id, name="invoke_agent")
        root.start_time_unix_nano, root.end_time_unix_nano = NOW, NOW + 10**9
        root.attributes.extend(_attrs({"gen_ai.agent.name": "bench"}))
        for n in range(2, SPANS_PER_TRACE + 1):
            span = scope.spans.add(trace_id=trace_id, span_id=n.to_bytes(8, "big"), parent_span_id=root_id, name="chat")
            span.start_time_unix_nano, span.end_time_unix_nano = NOW + n, NOW + n + 1000
            span.attributes.extend(_attrs({**CHAT, "gen_ai.usage.input_tokens": 100, "gen_ai.usage.output_tokens": 10}))
    return request


def measure(exports: int, traces: int) -> dict[str, float]:
    bodies = [export(i, traces) for i in range(exports)]
    as_events = [[e for s in map_request(b, "acct").spans for e in s.events] for b in bodies]
    spans = exports * traces * SPANS_PER_TRACE
    events = sum(len(batch) for batch in as_events)
    port = free_port()
    with redis_server() as redis_url:
        server = start_runstate(["serve", "--port", str(port)], redis_url, RUNSTATE_API_TOKENS="tok:acct")
        try:
            with httpx.Client(base_url=f"http://127.0.0.1:{port}", headers={"authorization": "Bearer tok"}) as http:
                _ready(http)
                started = time.perf_counter()
                for body in bodies:
                    raw = body.SerializeToString()
                    http.post(
                        "/v1/traces", content=raw, headers={"content-type": "application/x-protobuf"}
                    ).raise_for_status()
                traces_s = time.perf_counter() - started
                started = time.perf_counter()
                for batch in as_events:
                    for start in range(0, len(batch), 1000):
                        http.post("/v1/events", json=batch[start : start + 1000]).raise_for_status()
                events_s = time.perf_counter() - started
        finally:
            server.terminate()
            server.wait(timeout=30)
    return {
        "traces_spans_per_s": spans / traces_s,
        "traces_events_per_s": events / traces_s,
        "events_spans_per_s": spans / events_s,
        "events_events_per_s": events / events_s,
    }


def _ready(http: httpx.Client) -> None:
    for _ in range(600):
        try:
            if http.get("/healthz").status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.1)
    raise RuntimeError("runstate serve did not start")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--exports", type=int, default=20)
    parser.add_argument("--traces", type=int, default=100)
    args = parser.parse_args()
    figures = measure(args.exports, args.traces)
    traces, events = figures["traces_spans_per_s"], figures["events_spans_per_s"]
    print(f"POST /v1/traces: {traces:,.0f} spans/s ({figures['traces_events_per_s']:,.0f} events/s)")
    print(f"POST /v1/events: {events:,.0f} spans/s equivalent ({figures['events_events_per_s']:,.0f} events/s)")


if __name__ == "__main__":
    main()
