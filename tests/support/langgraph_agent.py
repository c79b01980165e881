"""A LangGraph agent on a fake chat model, for the adapter tests: the model calls the `lookup`
tool, a human approves the call (`interrupt()`), the tool runs, the model answers. The fake is
stateless (it answers from the conversation), so a second process resuming the thread gets the
same answers.

Run as a program, it is one process of the two-process test:
    python -m tests.support.langgraph_agent start|resume URL TOKEN CHECKPOINTS THREAD
"""

import sys
from collections.abc import Sequence
from typing import Any

from langchain_core.callbacks import BaseCallbackHandler
from langchain_core.language_models import BaseChatModel
from langchain_core.messages import AIMessage, BaseMessage, ToolMessage
from langchain_core.outputs import ChatGeneration, ChatResult
from langchain_core.tools import tool
from langgraph.graph import END, START, MessagesState, StateGraph
from langgraph.prebuilt import ToolNode
from langgraph.types import Command, interrupt

MODEL = "gpt-4o-mini-2024-07-18"
USAGE = [(120, 15), (160, 22)]  # (input, output) tokens of the tool call, then of the answer


class FakeChat(BaseChatModel):
    """Calls `lookup` until the conversation holds its result, then answers; usage as OpenAI's."""

    @property
    def _llm_type(self) -> str:
        return "fake-chat"

    def bind_tools(self, tools: Sequence[Any], **kwargs: Any) -> "FakeChat":
        return self

    def _generate(
        self, messages: list[BaseMessage], stop: Any = None, run_manager: Any = None, **kw: Any
    ) -> ChatResult:
        answered = any(isinstance(message, ToolMessage) for message in messages)
        prompt, completion = USAGE[answered]
        usage = {"input_tokens": prompt, "output_tokens": completion, "total_tokens": prompt + completion}
        if answered:
            message = AIMessage(content="The order ships on Monday.", usage_metadata=usage)  # type: ignore[arg-type]
        else:
            call = {"id": "call_1", "name": "lookup", "args": {"order": "A7"}}
            message = AIMessage(content="", tool_calls=[call], usage_metadata=usage)  # type: ignore[arg-type, list-item]
        message.response_metadata = {"model_name": MODEL}
        return ChatResult(generations=[ChatGeneration(message=message)], llm_output={"model_name": MODEL})


@tool
def lookup(order: str) -> str:
    """Look an order up."""
    return f"order {order}: ships Monday"


def _agent(state: MessagesState) -> dict[str, Any]:
    return {"messages": [FakeChat().bind_tools([lookup]).invoke(state["messages"])]}


def _review(state: MessagesState) -> Command[Any]:
    """A human approves each tool call before it runs."""
    approved = interrupt({"approve": state["messages"][-1].tool_calls[0]["name"]})  # type: ignore[attr-defined]
    return Command(goto="tools" if approved == "yes" else END)


def _next(state: MessagesState) -> str:
    last = state["messages"][-1]
    return "review" if isinstance(last, AIMessage) and last.tool_calls else END


def graph(checkpointer: Any = None, *, review: bool = True) -> Any:
    """The compiled graph; without `review`, tool calls run at once."""
    builder = StateGraph(MessagesState)
    builder.add_node("agent", _agent)
    builder.add_node("tools", ToolNode([lookup]))
    builder.add_edge(START, "agent")
    if review:
        builder.add_node("review", _review)
        builder.add_conditional_edges("agent", _next, ["review", END])
    else:
        builder.add_conditional_edges("agent", lambda s: "tools" if _next(s) == "review" else END, ["tools", END])
    builder.add_edge("tools", "agent")
    return builder.compile(checkpointer=checkpointer)


def run(handler: BaseCallbackHandler, checkpointer: Any, thread: str, resume: bool) -> Any:
    config = {"callbacks": [handler], "configurable": {"thread_id": thread}}
    given = Command(resume="yes") if resume else {"messages": [("user", "When does order A7 ship?")]}
    return graph(checkpointer).invoke(given, config=config)


def main(argv: list[str]) -> None:
    import sqlite3

    from langgraph.checkpoint.sqlite import SqliteSaver

    import runstate
    from runstate.integrations.langchain import RunstateCallbackHandler

    phase, url, token, checkpoints, thread = argv
    with runstate.Client(url, token) as client, sqlite3.connect(checkpoints, check_same_thread=False) as db:
        handler = RunstateCallbackHandler(client)
        run(handler, SqliteSaver(db), thread, resume=phase == "resume")
        handler.shutdown()


if __name__ == "__main__":
    main(sys.argv[1:])
