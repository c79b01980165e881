"""POST /v1/traces: OTLP/HTTP trace export (protobuf or JSON, gzip or not), so an unmodified
OpenTelemetry exporter feeds runstate. Spans become events (worker.intake.otlp) queued under
the token's account; the answer is an ExportTraceServiceResponse whose `partial_success`
counts and explains the spans refused (and notes the ones ignored)."""

import base64
import zlib
from typing import Any

import orjson
import structlog
from fastapi import APIRouter, Request, Response
from google.protobuf import json_format
from google.protobuf.message import DecodeError
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from starlette.concurrency import run_in_threadpool

from statemachine.errors import InvalidEvent
from statemachine.events import parse_event
from worker.api.auth import Account, Rt
from worker.api.errors import RESPONSES, ApiError, documented
from worker.api.events import read_body
from worker.api.guard import TRACES_BODY
from worker.intake.otlp import Mapped, map_request
from worker.store.envelope import Envelope
from worker.store.keys import RunRef, ref

MAX_EXPORT = TRACES_BODY  # bytes of one export, compressed and uncompressed alike
PROTOBUF = "application/x-protobuf"
_ID_FIELDS = frozenset({"traceId", "spanId", "parentSpanId"})
# Among events of one instant: a run starts first and ends last, its steps between.
_RANK = {"run.started": 0, "run.completed": 2, "run.failed": 2}

log = structlog.get_logger("runstate.api")
router = APIRouter(responses=RESPONSES)
_ANSWERS: dict[int | str, dict[str, Any]] = {
    200: {"description": "ExportTraceServiceResponse, in the request's encoding"},
    413: documented("INVALID_INPUT: export over 8 MiB, compressed or not"),
    415: documented("INVALID_INPUT: neither application/x-protobuf nor application/json"),
}


def _inflated(body: bytes, encoding: str) -> bytes:
    if encoding in ("", "identity"):
        return body
    if encoding != "gzip":
        raise ApiError(415, f"Content-Encoding {encoding[:32]!r} is not supported; use gzip or none")
    inflater = zlib.decompressobj(wbits=31)
    try:
        plain = inflater.decompress(body, MAX_EXPORT)
    except zlib.error as exc:
        raise ApiError(400, f"body is not valid gzip: {exc}") from None
    if inflater.unconsumed_tail:
        raise ApiError(413, f"export is over {MAX_EXPORT} bytes uncompressed; at most {MAX_EXPORT} are allowed")
    return plain


def _hex_ids_as_base64(node: Any) -> Any:
    """OTLP/JSON spells trace and span ids in hex, where protobuf's JSON mapping wants base64."""
    if isinstance(node, list):
        return [_hex_ids_as_base64(item) for item in node]
    if not isinstance(node, dict):
        return node
    converted = {}
    for key, value in node.items():
        if key in _ID_FIELDS and isinstance(value, str):
            try:
                value = base64.b64encode(bytes.fromhex(value)).decode()
            except ValueError:
                raise ApiError(400, f"{key} {value[:40]!r} is not hexadecimal") from None
        converted[key] = _hex_ids_as_base64(value)
    return converted


def _parsed(body: bytes, content_type: str) -> ExportTraceServiceRequest:
    request = ExportTraceServiceRequest()
    try:
        if content_type == PROTOBUF:
            request.ParseFromString(body)
        elif content_type == "application/json":
            json_format.ParseDict(_hex_ids_as_base64(orjson.loads(body)), request, ignore_unknown_fields=True)
        else:
            raise ApiError(415, f"Content-Type {content_type[:64]!r}: use {PROTOBUF} or application/json")
    except (DecodeError, json_format.ParseError, orjson.JSONDecodeError, RecursionError) as exc:
        raise ApiError(400, f"body is not a valid OTLP export: {str(exc)[:300]}") from None
    return request


def _queueable(mapped: Mapped, owner: str) -> list[tuple[RunRef, Envelope]]:
    """Every event of every span whose events all validate, in the order they occurred (a run's
    end after its steps' at the same instant); the others' spans join `mapped.refused`."""
    valid: list[tuple[int, int, str, Envelope]] = []
    for span in mapped.spans:
        texts = [orjson.dumps(event).decode() for event in span.events]
        try:
            parsed = [parse_event(text) for text in texts]
        except InvalidEvent as refusal:
            mapped.refused.append(f"span {span.span_id}: {refusal.detail}")
            continue
        for event, text in zip(parsed, texts, strict=True):
            rank = _RANK.get(event.type, 1)
            valid.append((event.occurred_at or 0, rank, span.run_id, Envelope(text, owner)))
    valid.sort(key=lambda item: item[:2])
    return [(ref(owner, run_id), envelope) for _, _, run_id, envelope in valid]  # the token's account's run


def _answer(mapped: Mapped, content_type: str) -> Response:
    answer = ExportTraceServiceResponse()
    notes = mapped.refused[:10] + ([f"and {len(mapped.refused) - 10} more refused"] if len(mapped.refused) > 10 else [])
    if mapped.ignored:
        notes.append(f"{mapped.ignored} spans ignored: not model, tool or agent spans, nor a trace's root")
    if notes:
        answer.partial_success.rejected_spans = len(mapped.refused)
        answer.partial_success.error_message = "; ".join(notes)
    if content_type == PROTOBUF:
        return Response(answer.SerializeToString(), media_type=PROTOBUF)
    return Response(json_format.MessageToJson(answer, indent=None), media_type="application/json")


@router.post("/v1/traces", response_model=None, response_class=Response, responses=_ANSWERS)
async def post_traces(request: Request, owner: Account, runtime: Rt) -> Response:
    """An OTLP/HTTP trace export: each trace a run, model and tool spans its steps (README, "OTLP trace ingest")."""
    content_type = request.headers.get("content-type", "").split(";")[0].strip().lower()
    body = _inflated(await read_body(request, MAX_EXPORT), request.headers.get("content-encoding", "").lower())
    mapped = map_request(_parsed(body, content_type), owner)
    valid = _queueable(mapped, owner)
    size = runtime.settings.batch_size
    for start in range(0, len(valid), size):
        await run_in_threadpool(runtime.publisher.enqueue, valid[start : start + size])  # Redis: off the loop
    spans = len(mapped.spans) + mapped.ignored + len(mapped.refused)
    log.info(
        "traces.ingested",
        account=owner,
        spans=spans,
        events=len(valid),
        ignored=mapped.ignored,
        refused=len(mapped.refused),
    )
    return _answer(mapped, content_type)
