"""POST /v1/traces on bad and unusual input: every refusal explained, nothing half-applied."""

import gzip

import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue

from tests.support.apikit import A, api_client
from tests.support.publishing import refs
from worker.api.traces import MAX_EXPORT
from worker.runtime import Runtime
from worker.store.keys import ref

pytestmark = pytest.mark.integration
PROTOBUF = {**A, "content-type": "application/x-protobuf"}
TRACE = bytes.fromhex("0af7651916cd43dd8448eb211c80319c")


def export(*spans: tuple[str, str | None, dict[str, str]]) -> ExportTraceServiceRequest:
    """One export: each span (span id hex, parent id hex or None, string attributes), one trace."""
    request = ExportTraceServiceRequest()
    scope = request.resource_spans.add().scope_spans.add()
    for span_id, parent, attrs in spans:
        span = scope.spans.add(trace_id=TRACE, span_id=bytes.fromhex(span_id), name="s")
        span.start_time_unix_nano, span.end_time_unix_nano = 1_795_600_800 * 10**9, 1_795_600_801 * 10**9
        if parent is not None:
            span.parent_span_id = bytes.fromhex(parent)
        span.attributes.extend(KeyValue(key=k, value=AnyValue(string_value=v)) for k, v in attrs.items())
    return request


def answer_of(content: bytes) -> ExportTraceServiceResponse:
    answer = ExportTraceServiceResponse()
    answer.ParseFromString(content)
    return answer


def test_malformed_bodies_are_400_and_oversized_413_with_the_reason(
    runtime: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    with api_client(runtime, monkeypatch) as api:
        broken = api.post("/v1/traces", content=b"\x0a\xff\xff", headers=PROTOBUF)
        not_json = api.post("/v1/traces", content=b"{", headers={**A, "content-type": "application/json"})
        bad_gzip = api.post("/v1/traces", content=b"nope", headers={**PROTOBUF, "content-encoding": "gzip"})
        bomb = gzip.compress(b"\0" * (MAX_EXPORT + 1))
        inflated = api.post("/v1/traces", content=bomb, headers={**PROTOBUF, "content-encoding": "gzip"})
        huge = api.post("/v1/traces", content=b"\0" * (MAX_EXPORT + 1), headers=PROTOBUF)
        untyped = api.post("/v1/traces", content=b"", headers={**A, "content-type": "text/plain"})
        anonymous = api.post("/v1/traces", content=b"", headers={"content-type": "application/x-protobuf"})

    assert [r.status_code for r in (broken, not_json, bad_gzip, inflated, huge, untyped, anonymous)] == [
        400,
        400,
        400,
        413,
        413,
        415,
        401,
    ]
    assert broken.json()["error"]["message"].startswith("body is not a valid OTLP export")
    assert inflated.json()["error"]["message"].endswith(f"at most {MAX_EXPORT} are allowed")


def test_unmapped_spans_are_ignored_and_counted_and_a_foreign_account_is_refused_span_by_span(
    runtime: Runtime, monkeypatch: pytest.MonkeyPatch
) -> None:
    request = export(
        ("00f067aa0ba902b7", None, {"gen_ai.agent.name": "bot"}),
        ("00f067aa0ba902b8", "00f067aa0ba902b7", {"http.request.method": "GET"}),
        ("00f067aa0ba902b9", "00f067aa0ba902b7", {"gen_ai.operation.name": "chat", "runstate.account_id": "acct_b"}),
        ("00f067aa0ba902ba", "00f067aa0ba902b7", {"gen_ai.operation.name": "chat", "gen_ai.request.model": "x" * 300}),
    )
    with api_client(runtime, monkeypatch) as api:
        answer = api.post("/v1/traces", content=request.SerializeToString(), headers=PROTOBUF)
    run_id = TRACE.hex()
    runtime.processor.drain(refs(run_id, account="acct_a"))
    state = runtime.store.get(ref("acct_a", run_id))

    parsed = answer_of(answer.content)
    assert (answer.status_code, parsed.partial_success.rejected_spans) == (200, 1)
    assert parsed.partial_success.error_message == (
        "span 00f067aa0ba902b9: runstate.account_id 'acct_b' is not this token's account; "
        "1 spans ignored: not model, tool or agent spans, nor a trace's root"
    )
    assert state is not None
    assert (state.run.status, state.run.runnable_id, list(state.steps)) == ("completed", "bot", ["00f067aa0ba902ba"])
    assert state.steps["00f067aa0ba902ba"].model == "x" * 256  # bounded, not refused
