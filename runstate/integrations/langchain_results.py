"""What a LangChain `LLMResult` says about the call: the model that answered, and its usage."""

from typing import TYPE_CHECKING, Any

from runstate.integrations import mapping

if TYPE_CHECKING:  # imported for real by runstate.integrations.langchain, with its message when missing
    from langchain_core.outputs import LLMResult


def model_of(response: "LLMResult") -> str | None:
    output = response.llm_output or {}
    named = output.get("model_name") or output.get("model")
    for generation in (g for group in response.generations for g in group):
        message = getattr(generation, "message", None)
        named = named or (getattr(message, "response_metadata", None) or {}).get("model_name")
    return mapping.text(named, mapping.MAX_NAME)


def usage_of(response: "LLMResult") -> dict[str, Any] | None:
    """The usage the chat model put on its message (`usage_metadata`), else the LLM's `token_usage`."""
    for generation in (g for group in response.generations for g in group):
        usage = getattr(getattr(generation, "message", None), "usage_metadata", None)
        if usage:
            return dict(usage)
    counted = (response.llm_output or {}).get("token_usage")
    return dict(counted) if isinstance(counted, dict) else None
