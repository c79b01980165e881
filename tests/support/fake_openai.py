"""A fake OpenAI Chat Completions endpoint on httpx's MockTransport, for the Agents SDK: the first
request is answered with a call of the `lookup` tool, the next with a final answer, each with
usage. No network: the SDK's own client sends real requests to it."""

import json
from typing import Any

import httpx
from agents import Agent, OpenAIChatCompletionsModel, function_tool
from openai import AsyncOpenAI

MODEL = "gpt-4o-mini"
ANSWERED = "gpt-4o-mini-2024-07-18"  # what the fake says answered, as OpenAI does
USAGE = [(120, 15), (160, 22)]  # (prompt, completion) tokens of the two answers


def _completion(index: int, message: dict[str, Any], finish: str) -> dict[str, Any]:
    prompt, completion = USAGE[index]
    return {
        "id": f"chatcmpl-{index}",
        "object": "chat.completion",
        "created": 1_760_000_000,
        "model": ANSWERED,
        "choices": [{"index": 0, "message": message, "finish_reason": finish}],
        "usage": {"prompt_tokens": prompt, "completion_tokens": completion, "total_tokens": prompt + completion},
    }


def answer(request: httpx.Request) -> httpx.Response:
    """A tool call until the conversation holds the tool's result, then the final answer."""
    sent = json.loads(request.content)
    if any(message["role"] == "tool" for message in sent["messages"]):
        message = {"role": "assistant", "content": "The order ships on Monday."}
        return httpx.Response(200, json=_completion(1, message, "stop"))
    call = {"id": "call_1", "type": "function", "function": {"name": "lookup", "arguments": '{"order": "A7"}'}}
    message = {"role": "assistant", "content": None, "tool_calls": [call]}
    return httpx.Response(200, json=_completion(0, message, "tool_calls"))


def failing(request: httpx.Request) -> httpx.Response:
    return httpx.Response(400, json={"error": {"message": "bad request", "type": "invalid_request_error"}})


@function_tool
def lookup(order: str) -> str:
    """Look an order up."""
    return f"order {order}: ships Monday"


def agent(handler: Any = answer) -> Agent:
    client = AsyncOpenAI(
        api_key="sk-test",
        base_url="http://openai.test/v1",
        max_retries=0,
        http_client=httpx.AsyncClient(transport=httpx.MockTransport(handler)),
    )
    model = OpenAIChatCompletionsModel(model=MODEL, openai_client=client)
    return Agent(name="support-bot", instructions="Answer order questions.", model=model, tools=[lookup])
