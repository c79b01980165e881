"""OTLP traces as runstate events: a pure mapping from a parsed ExportTraceServiceRequest
(README, "OTLP trace ingest", has the table this implements).

A trace is a run; model-call and tool spans are steps; agent and chain spans name the run.
Every event id derives from the span and the phase, so a re-sent export changes nothing.
Spans are mapped one by one and all of a span's events stand or fall together: the caller
refuses a span whose events do not validate, and queues the others.
"""

from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.trace.v1.trace_pb2 import Span, Status

from statemachine.timefmt import rfc3339
from worker.intake import otlp_attributes as read

STEP_KINDS = frozenset({"model", "tool"})


@dataclass(frozen=True, slots=True)
class SpanEvents:
    run_id: str
    span_id: str
    events: list[dict[str, Any]]


@dataclass
class Mapped:
    spans: list[SpanEvents] = field(default_factory=list)  # spans that became events
    ignored: int = 0  # spans that map to nothing (HTTP client spans, say)
    refused: list[str] = field(default_factory=list)  # why each refused span was refused


@dataclass(frozen=True, slots=True)
class _Seen:
    span: Span
    attrs: dict[str, Any]
    kind: str | None


def _spans(request: ExportTraceServiceRequest) -> Iterator[Span]:
    for resource in request.resource_spans:
        for scope in resource.scope_spans:
            yield from scope.spans


def map_request(request: ExportTraceServiceRequest, account: str) -> Mapped:
    """The events of every span in the export, for the token's `account`."""
    seen: dict[tuple[bytes, bytes], _Seen] = {}
    for span in _spans(request):
        attrs = read.attributes(span.attributes)
        seen[(span.trace_id, span.span_id)] = _Seen(span, attrs, read.kind(attrs))
    mapped = Mapped()
    for item in seen.values():
        problem = _problem(item, account)
        if problem is not None:
            mapped.refused.append(f"span {item.span.span_id.hex() or '?'}: {problem}")
            continue
        events = _Trace(seen, item.span.trace_id).events(item)
        if events:
            mapped.spans.append(SpanEvents(str(events[0]["run_id"]), item.span.span_id.hex(), events))
        elif item.kind != "agent":
            mapped.ignored += 1
    return mapped


def _problem(item: _Seen, account: str) -> str | None:
    span = item.span
    if len(span.trace_id) != 16 or len(span.span_id) != 8:
        return "trace_id must be 16 bytes and span_id 8"
    named = item.attrs.get("runstate.account_id")
    if named is not None and named != account:
        return f"runstate.account_id {str(named)[:128]!r} is not this token's account"
    return None


class _Trace:
    """One span's trace, as far as this export shows it."""

    def __init__(self, seen: dict[tuple[bytes, bytes], _Seen], trace_id: bytes) -> None:
        self.seen = seen
        self.trace_id = trace_id
        self.root = next((s for (t, _), s in seen.items() if t == trace_id and not s.span.parent_span_id), None)

    def events(self, item: _Seen) -> list[dict[str, Any]]:
        run_id = self.run_id(item)
        found: list[dict[str, Any]] = []
        if not item.span.parent_span_id:
            found += self._run_events(run_id, item)
        if item.kind in STEP_KINDS:
            found += self._step_events(run_id, item)
        return found

    def run_id(self, item: _Seen) -> str:
        """The span's own `runstate.run_id`, else its root's (when in this export), else the trace id."""
        own = item.attrs.get("runstate.run_id")
        if own is None and self.root is not None:
            own = self.root.attrs.get("runstate.run_id")
        return str(own) if own is not None else self.trace_id.hex()

    def _agent(self) -> dict[str, Any]:
        """The attributes that name the run: the root's, else the first agent span's in this export."""
        if self.root is not None and self.root.kind == "agent":
            return self.root.attrs
        agents = (s for (t, _), s in self.seen.items() if t == self.trace_id and s.kind == "agent")
        return next(agents, _Seen(Span(), {}, None)).attrs

    def _run_events(self, run_id: str, item: _Seen) -> list[dict[str, Any]]:
        span, agent = item.span, self._agent()
        data = {
            "runnable_id": read.text(read.first(agent, "gen_ai.agent.name") or (span.name if item.kind else None), 256),
            "assistant_id": read.text(read.first(agent, "gen_ai.agent.id"), 256),
            "thread_id": read.text(read.first(item.attrs, "gen_ai.conversation.id", "session.id"), 256),
            "telemetry_span_id": span.span_id.hex(),
        }
        started = _event(span, "run_started", "run.started", run_id, span.start_time_unix_nano, data)
        if span.status.code == Status.STATUS_CODE_ERROR:
            ended = _event(
                span,
                "run_ended",
                "run.failed",
                run_id,
                span.end_time_unix_nano,
                {"error": read.error(span, item.attrs)},
            )
        else:
            ended = _event(span, "run_ended", "run.completed", run_id, span.end_time_unix_nano, {})
        return [started, ended]

    def _step_events(self, run_id: str, item: _Seen) -> list[dict[str, Any]]:
        span, attrs = item.span, item.attrs
        data: dict[str, Any] = {"parent_step_id": self._parent_step(span)}
        if item.kind == "tool":
            data["type"], (data["name"], data["step_details"]) = "tool_calls", read.tool_call(span, attrs)
        else:
            data.update(type="message_creation", name=read.text(attrs.get("gen_ai.agent.name"), 256))
        data.update(model=read.model(attrs), provider_name=read.provider(attrs))
        created = _event(span, "created", "step.created", run_id, span.start_time_unix_nano, data, step=True)
        end = {"usage": read.usage(attrs), "model": data["model"], "provider_name": data["provider_name"]}
        failed = span.status.code == Status.STATUS_CODE_ERROR
        if failed:
            end["error"] = read.error(span, attrs)
        kind = "step.failed" if failed else "step.completed"
        return [created, _event(span, "ended", kind, run_id, span.end_time_unix_nano, end, step=True)]

    def _parent_step(self, span: Span) -> str | None:
        """The nearest ancestor in this export that is a step; None when the chain leaves the export."""
        parent = self.seen.get((self.trace_id, span.parent_span_id))
        hops = 0
        while parent is not None and hops < 1_000:  # a cycle in hostile input ends here
            if parent.kind in STEP_KINDS:
                return parent.span.span_id.hex()
            parent = self.seen.get((self.trace_id, parent.span.parent_span_id))
            hops += 1
        return None


def _event(
    span: Span, phase: str, type_: str, run_id: str, nanos: int, data: dict[str, Any], *, step: bool = False
) -> dict[str, Any]:
    span_hex = span.span_id.hex()
    event: dict[str, Any] = {"id": f"otlp_{span_hex}_{phase}", "type": type_, "run_id": run_id}
    if step:
        event["step_id"] = span_hex
    if nanos:
        event["occurred_at"] = rfc3339(nanos // 1_000_000)
    given = {name: value for name, value in data.items() if value is not None}
    if given:
        event["data"] = given
    return event
