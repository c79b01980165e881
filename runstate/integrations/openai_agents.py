"""`RunstateTracingProcessor`: the OpenAI Agents SDK's traces as runstate runs, live.

    from agents import add_trace_processor
    add_trace_processor(RunstateTracingProcessor(runstate.Client(url, token)))

A trace is a run (run id = the SDK's trace id, `trace_…`): `run.started` when it starts,
`run.completed` or `run.failed` when it ends. Model calls (generation and response spans) are
`message_creation` steps with their model and usage, function tools `tool_calls` steps with
the tool's name, arguments and output; each is created when its span starts and completed
(or failed) when it ends. Agent, handoff and guardrail spans are not steps: a step's
`parent_step_id` is its nearest ancestor span that is one.
"""

import threading
from dataclasses import dataclass, field
from typing import Any

from runstate import events
from runstate.client import Client
from runstate.integrations import mapping
from runstate.integrations.sender import Sender

try:
    from agents.tracing import Span, Trace, TracingProcessor
    from agents.tracing.span_data import FunctionSpanData, GenerationSpanData, ResponseSpanData
except ImportError as missing:  # pragma: no cover - the message is the point
    raise ImportError(
        "runstate.integrations.openai_agents needs the OpenAI Agents SDK: pip install 'runstate[openai-agents]'"
    ) from missing

MODEL_SPANS = (GenerationSpanData, ResponseSpanData)


@dataclass
class _Run:
    """What one open trace needs remembered: its spans' parents, and how it is going."""

    parents: dict[str, str | None] = field(default_factory=dict)  # span → parent span
    steps: set[str] = field(default_factory=set)  # the spans that are steps
    last_step_error: tuple[str, str] | None = None  # the last step's (code, message), if it failed
    agent_error: tuple[str, str] | None = None  # an error set on a top-level span (max turns, say)


class RunstateTracingProcessor(TracingProcessor):
    """An Agents SDK `TracingProcessor` that publishes each trace as a runstate run.

    It never blocks the agent: events go out in batches from a background thread (see
    `runstate.integrations.sender`); `force_flush` waits for them, `shutdown` also stops the
    thread. `heartbeat_every` (seconds) sends `run.heartbeat` while a trace is open."""

    def __init__(self, client: Client, *, heartbeat_every: float | None = None) -> None:
        self._sender = Sender(client, heartbeat_every=heartbeat_every)
        self._runs: dict[str, _Run] = {}
        self._lock = threading.Lock()  # the SDK calls processors from any thread

    def on_trace_start(self, trace: Trace) -> None:
        with self._lock:
            self._runs[trace.trace_id] = _Run()
        exported = trace.export() or {}
        started = events.run_started(
            trace.trace_id,
            runnable_id=mapping.text(trace.name, mapping.MAX_NAME) or None,
            thread_id=mapping.text(exported.get("group_id"), mapping.MAX_NAME),
            metadata=mapping.metadata(exported.get("metadata")),
        )
        self._sender.opened(trace.trace_id, started)

    def on_trace_end(self, trace: Trace) -> None:
        with self._lock:
            run = self._runs.pop(trace.trace_id, _Run())
        # A run that ended well ended with a step that went well: a failed model call, or a tool
        # error that escaped, is the last step of a run that raised.
        failure = run.agent_error or run.last_step_error
        if failure is None:
            ended = events.run_completed(trace.trace_id)
        else:
            ended = events.run_failed(trace.trace_id, code=failure[0], message=failure[1])
        self._sender.closed(trace.trace_id, ended)

    def on_span_start(self, span: Span[Any]) -> None:
        data = span.span_data
        with self._lock:
            run = self._runs.setdefault(span.trace_id, _Run())
            run.parents[span.span_id] = span.parent_id
            if not isinstance(data, (*MODEL_SPANS, FunctionSpanData)):
                return
            run.steps.add(span.span_id)
            parent = _parent_step(run, span.parent_id)
        self._sender.send(
            events.step_created(
                span.trace_id,
                span.span_id,
                occurred_at=span.started_at,
                parent_step_id=parent,
                **_describe(span.span_id, data),
            )
        )

    def on_span_end(self, span: Span[Any]) -> None:
        data = span.span_data
        with self._lock:
            run = self._runs.setdefault(span.trace_id, _Run())
            failure = _failure(span)
            if span.parent_id is None and failure is not None:
                run.agent_error = ("AGENT_ERROR", failure[1])
            if span.span_id not in run.steps:
                return
            run.last_step_error = failure
            parent = _parent_step(run, span.parent_id)
        described = {"occurred_at": span.ended_at, "parent_step_id": parent, **_describe(span.span_id, data)}
        described.update(_usage(data))
        if failure is None:
            self._sender.send(events.step_completed(span.trace_id, span.span_id, **described))
        else:
            code, message = failure
            self._sender.send(events.step_failed(span.trace_id, span.span_id, code=code, message=message, **described))

    def force_flush(self) -> None:
        self._sender.flush()

    def shutdown(self) -> None:
        self._sender.flush()
        self._sender.shutdown()


def _parent_step(run: _Run, parent: str | None) -> str | None:
    """The nearest ancestor span that is a step."""
    seen = 0
    while parent is not None and parent not in run.steps and seen < len(run.parents):
        parent, seen = run.parents.get(parent), seen + 1
    return parent if parent in run.steps else None


def _failure(span: Span[Any]) -> tuple[str, str] | None:
    """`(code, message)` of a span the SDK marked failed: its message, then the error it names."""
    error = span.error
    if error is None:
        return None
    code = "TOOL_ERROR" if isinstance(span.span_data, FunctionSpanData) else "MODEL_ERROR"
    if span.parent_id is None:
        code = "AGENT_ERROR"
    detail = (error.get("data") or {}).get("error")
    message = f"{error.get('message', '')}: {detail}" if detail else str(error.get("message", ""))
    return code, mapping.text(message) or ""


def _describe(span_id: str, data: Any) -> dict[str, Any]:
    """A step's type, name, model and tool call, as far as the span knows them yet."""
    if isinstance(data, FunctionSpanData):
        details = mapping.tool_call(span_id, data.name, data.input, data.output)
        return {"type": "tool_calls", "name": mapping.text(data.name, mapping.MAX_NAME), "step_details": details}
    if isinstance(data, GenerationSpanData):
        return {"type": "message_creation", "model": mapping.text(data.model, mapping.MAX_NAME)}
    response = data.response
    model = mapping.text(response.model, mapping.MAX_NAME) if response is not None else None
    return {"type": "message_creation", "model": model}


def _usage(data: Any) -> dict[str, Any]:
    """`{"usage": …}` of a finished model call, or nothing."""
    if isinstance(data, GenerationSpanData):
        counts = data.usage
    elif isinstance(data, ResponseSpanData):
        response = data.response
        counts = data.usage or (response.usage.model_dump() if response is not None and response.usage else None)
    else:
        return {}
    found = mapping.usage(counts)
    return {"usage": found} if found else {}
