"""What both adapters need to say in runstate's terms: usage, bounded text, Azure's tool call."""

from collections.abc import Mapping
from typing import Any

from runstate.events import Usage

MAX_TEXT = 4096  # the event format's longest free text (an error message)
MAX_NAME = 256  # a name, a model
MAX_CODE = 64  # an error code
MAX_METADATA = 16  # keys of a run's metadata, each value at most 512 characters


def text(value: object, limit: int = MAX_TEXT) -> str | None:
    return None if value is None else str(value)[:limit]


def _count(value: object) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else None


def usage(counts: Mapping[str, Any] | None) -> Usage | None:
    """Token counts in OpenAI's Responses/Agents spelling (input/output, with details) or its
    Chat Completions one (prompt/completion), as runstate's `Usage`; None when nothing is known."""
    if not counts:
        return None
    input_details = counts.get("input_tokens_details") or counts.get("input_token_details") or {}
    output_details = counts.get("output_tokens_details") or counts.get("output_token_details") or {}
    found = {
        "prompt_tokens": _count(counts.get("input_tokens", counts.get("prompt_tokens"))),
        "completion_tokens": _count(counts.get("output_tokens", counts.get("completion_tokens"))),
        "cached_tokens": _count(input_details.get("cached_tokens", input_details.get("cache_read"))),
        "reasoning_tokens": _count(output_details.get("reasoning_tokens", output_details.get("reasoning"))),
    }
    given = Usage(**{name: value for name, value in found.items() if value})  # type: ignore[typeddict-item]
    return given or None


def tool_call(call_id: str, name: str | None, arguments: object, output: object) -> dict[str, Any]:
    """Azure's `tool_calls` step_details for one function call (what runstate's OTLP ingest writes too)."""
    function = {"name": name, "arguments": text(arguments) or "", "output": text(output)}
    return {"type": "tool_calls", "tool_calls": [{"id": call_id[:MAX_NAME], "type": "function", "function": function}]}


def metadata(values: Mapping[str, Any] | None) -> dict[str, str] | None:
    """The string-valued entries runstate can keep (at most 16, values cut to 512 characters)."""
    kept = {key[:64]: value[:512] for key, value in (values or {}).items() if isinstance(value, str)}
    return dict(list(kept.items())[:MAX_METADATA]) or None
