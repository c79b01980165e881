"""What one OTLP span says, read from its attributes: OpenTelemetry's `gen_ai.*` semantic
conventions first, OpenInference's names as the fallback (README, "OTLP trace ingest")."""

from collections.abc import Iterable
from typing import Any

from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.trace.v1.trace_pb2 import Span

MODEL_OPERATIONS = frozenset({"chat", "text_completion", "generate_content", "embeddings"})
MODEL_KINDS = frozenset({"LLM", "EMBEDDING"})  # openinference.span.kind
AGENT_OPERATIONS = frozenset({"invoke_agent", "create_agent"})
AGENT_KINDS = frozenset({"AGENT", "CHAIN"})
MAX_TEXT = 4096  # the event format's longest free text


def value_of(value: AnyValue) -> Any:
    """An AnyValue as plain Python (arrays and key-value lists too)."""
    which = value.WhichOneof("value")
    if which == "array_value":
        return [value_of(item) for item in value.array_value.values]
    if which == "kvlist_value":
        return attributes(value.kvlist_value.values)
    if which == "bytes_value":
        return value.bytes_value.hex()
    return None if which is None else getattr(value, which)


def attributes(pairs: Iterable[KeyValue]) -> dict[str, Any]:
    return {pair.key: value_of(pair.value) for pair in pairs}


def kind(attrs: dict[str, Any]) -> str | None:
    """ "model", "tool" or "agent" for the spans the mapping uses; None for the others."""
    operation = attrs.get("gen_ai.operation.name")
    inference = attrs.get("openinference.span.kind")
    if operation in MODEL_OPERATIONS or inference in MODEL_KINDS:
        return "model"
    if operation == "execute_tool" or inference == "TOOL":
        return "tool"
    if operation in AGENT_OPERATIONS or inference in AGENT_KINDS or "gen_ai.agent.name" in attrs:
        return "agent"
    return None


def first(attrs: dict[str, Any], *names: str) -> Any:
    return next((attrs[name] for name in names if attrs.get(name) not in (None, "")), None)


def text(value: Any, limit: int = MAX_TEXT) -> str | None:
    return None if value is None else str(value)[:limit]


def tokens(attrs: dict[str, Any], *names: str) -> int:
    found = first(attrs, *names)
    return int(found) if isinstance(found, int | float) and found >= 0 else 0


def usage(attrs: dict[str, Any]) -> dict[str, int] | None:
    counts = {
        "prompt_tokens": tokens(attrs, "gen_ai.usage.input_tokens", "llm.token_count.prompt"),
        "completion_tokens": tokens(attrs, "gen_ai.usage.output_tokens", "llm.token_count.completion"),
        "cached_tokens": tokens(
            attrs,
            "gen_ai.usage.cache_read.input_tokens",
            "gen_ai.usage.cache_read_input_tokens",
            "llm.token_count.prompt_details.cache_read",
        ),
        "reasoning_tokens": tokens(
            attrs,
            "gen_ai.usage.reasoning.output_tokens",
            "gen_ai.usage.reasoning_tokens",
            "llm.token_count.completion_details.reasoning",
        ),
    }
    return counts if any(counts.values()) else None


def model(attrs: dict[str, Any]) -> str | None:
    return text(first(attrs, "gen_ai.response.model", "gen_ai.request.model", "llm.model_name"), 256)


def provider(attrs: dict[str, Any]) -> str | None:
    return text(first(attrs, "gen_ai.provider.name", "gen_ai.system", "llm.provider", "llm.system"), 256)


def tool_call(span: Span, attrs: dict[str, Any]) -> tuple[str | None, dict[str, Any]]:
    """The tool's name and Azure's `tool_calls` step_details for one tool span."""
    name = text(first(attrs, "gen_ai.tool.name", "tool.name") or span.name, 256)
    function = {
        "name": name,
        "arguments": text(first(attrs, "gen_ai.tool.call.arguments", "tool.parameters", "input.value")) or "",
        "output": text(first(attrs, "gen_ai.tool.call.result", "output.value")),
    }
    call_id = text(first(attrs, "gen_ai.tool.call.id", "tool_call.id"), 256) or span.span_id.hex()
    return name, {"type": "tool_calls", "tool_calls": [{"id": call_id, "type": "function", "function": function}]}


def error(span: Span, attrs: dict[str, Any]) -> dict[str, str]:
    """`{code, message}` of a span with status ERROR: `error.type`, the status or exception message."""
    thrown = next((attributes(e.attributes) for e in span.events if e.name == "exception"), {})
    code = text(first(attrs, "error.type") or thrown.get("exception.type") or "ERROR", 64) or "ERROR"
    message = span.status.message or thrown.get("exception.message") or ""
    return {"code": code, "message": str(message)[:MAX_TEXT]}
