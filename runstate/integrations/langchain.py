"""`RunstateCallbackHandler`: LangChain and LangGraph runs as runstate runs, live.

    graph.invoke(inputs, config={"callbacks": [RunstateCallbackHandler(client)],
                                 "configurable": {"thread_id": "thread_1"}})

The root run (the graph, or the chain invoked) is a runstate run: its id is the root's run id
as text, `run.started` when it starts, `run.completed` (or `run.failed`) when it ends. Chat
model and LLM calls are `message_creation` steps with model and usage, tools `tool_calls`
steps with name, arguments and output; inner chains (graph nodes) are not steps, and a step's
`parent_step_id` is its nearest ancestor that is one.

A LangGraph interrupt makes the run `waiting`. With a `thread_id` in the config, a root run
first asks runstate for the thread's run that has not finished: resuming the thread — in
this process or another — continues that run (`run.resumed`) instead of starting a new one.
That one lookup is the only request made on the agent's thread; events are published from a
background thread (`runstate.integrations.sender`).
"""

import logging
import threading
from dataclasses import dataclass, field
from typing import Any
from uuid import UUID

from runstate import events
from runstate.client import Client
from runstate.errors import ClientError
from runstate.integrations import mapping
from runstate.integrations.langchain_results import model_of, usage_of
from runstate.integrations.sender import Sender

try:
    from langchain_core.callbacks import BaseCallbackHandler
    from langchain_core.outputs import LLMResult
except ImportError as missing:  # pragma: no cover - the message is the point
    raise ImportError(
        "runstate.integrations.langchain needs langchain-core: pip install 'runstate[langchain]'"
    ) from missing

log = logging.getLogger("runstate.integrations")
OPEN = frozenset({"running", "waiting"})  # a run in these statuses can go on


@dataclass(frozen=True)
class _Step:
    """What a step's end needs from its start."""

    model: str | None = None
    tool: str | None = None
    call_id: str = ""
    arguments: str = ""


@dataclass
class _Run:
    """One root run's runstate run, and the LangChain runs under it."""

    run_id: str
    members: dict[UUID, UUID | None] = field(default_factory=dict)  # each run under the root → its parent
    steps: dict[UUID, "_Step"] = field(default_factory=dict)  # the runs that are steps
    interrupted: bool = False  # a node raised LangGraph's GraphInterrupt: the graph stops to wait


class RunstateCallbackHandler(BaseCallbackHandler):
    """A LangChain callback handler that publishes each root run as a runstate run.

    `flush` waits until everything so far was published, `shutdown` also stops the background
    thread. `heartbeat_every` (seconds) sends `run.heartbeat` while a run is running."""

    def __init__(self, client: Client, *, heartbeat_every: float | None = None) -> None:
        self._client = client
        self._sender = Sender(client, heartbeat_every=heartbeat_every)
        self._roots: dict[UUID, _Run] = {}  # every LangChain run under way → its root's runstate run
        self._lock = threading.Lock()  # LangGraph calls back from its worker threads

    def flush(self, timeout: float | None = None) -> bool:
        return self._sender.flush(timeout)

    def shutdown(self) -> None:
        self._sender.flush()
        self._sender.shutdown()

    # --- chains: the root is the run ---------------------------------------------------------

    def on_chain_start(
        self,
        serialized: dict[str, Any] | None,
        inputs: Any,
        *,
        run_id: UUID,
        parent_run_id: UUID | None = None,
        metadata: dict[str, Any] | None = None,
        **kwargs: Any,
    ) -> None:
        if parent_run_id is not None:
            self._join(run_id, parent_run_id)
            return
        thread = mapping.text((metadata or {}).get("thread_id"), mapping.MAX_NAME)
        run = _Run(str(run_id))
        resuming = getattr(inputs, "resume", None) is not None  # LangGraph's Command(resume=...)
        found = self._open_run(thread) if thread else None
        with self._lock:
            self._roots[run_id] = run
        if found is None:
            name = mapping.text(kwargs.get("name") or (serialized or {}).get("name"), mapping.MAX_NAME)
            self._sender.opened(run.run_id, events.run_started(run.run_id, thread_id=thread, runnable_id=name))
            return
        run.run_id = found["id"]
        go_on = [events.run_resumed(run.run_id)] if resuming or found["status"] == "waiting" else []
        self._sender.opened(run.run_id, *go_on)

    def on_chain_end(self, outputs: Any, *, run_id: UUID, parent_run_id: UUID | None = None, **kwargs: Any) -> None:
        if parent_run_id is not None:
            return
        with self._lock:
            run = self._roots.get(run_id)
            interrupted = run is not None and run.interrupted
        interrupted = interrupted or (isinstance(outputs, dict) and "__interrupt__" in outputs)
        self._end(run_id, events.run_waiting if interrupted else events.run_completed)

    def on_chain_error(
        self, error: BaseException, *, run_id: UUID, parent_run_id: UUID | None = None, **kwargs: Any
    ) -> None:
        if parent_run_id is not None:  # a node's error reaches its root, which says what became of the run
            with self._lock:
                run = self._roots.get(run_id)
                if run is not None and _interrupt(error):
                    run.interrupted = True
            return
        if _interrupt(error):
            self._end(run_id, events.run_waiting)
        else:
            code, message = _error(error)
            self._end(run_id, lambda run: events.run_failed(run, code=code, message=message))

    # --- model calls -------------------------------------------------------------------------

    def on_chat_model_start(self, serialized: dict[str, Any] | None, messages: Any, **kwargs: Any) -> None:
        self._model_started(kwargs)

    def on_llm_start(self, serialized: dict[str, Any] | None, prompts: Any, **kwargs: Any) -> None:
        self._model_started(kwargs)

    def on_llm_end(self, response: LLMResult, *, run_id: UUID, **kwargs: Any) -> None:
        found = self._step(run_id)
        if found is not None:
            run, step, parent = found
            model = model_of(response) or step.model
            usage = mapping.usage(usage_of(response))
            self._sender.send(events.step_completed(run, str(run_id), parent_step_id=parent, model=model, usage=usage))

    def on_llm_error(self, error: BaseException, *, run_id: UUID, **kwargs: Any) -> None:
        self._step_failed(run_id, error)

    # --- tools -------------------------------------------------------------------------------

    def on_tool_start(
        self,
        serialized: dict[str, Any] | None,
        input_str: str,
        *,
        run_id: UUID,
        parent_run_id: UUID | None = None,
        **kwargs: Any,
    ) -> None:
        name = mapping.text(kwargs.get("name") or (serialized or {}).get("name"), mapping.MAX_NAME)
        call_id = str(kwargs.get("tool_call_id") or run_id)
        found = self._step_started(run_id, parent_run_id, _Step(tool=name, call_id=call_id, arguments=input_str))
        if found is not None:
            run, parent = found
            details = mapping.tool_call(call_id, name, input_str, None)
            self._sender.send(
                events.step_created(
                    run, str(run_id), type="tool_calls", name=name, parent_step_id=parent, step_details=details
                )
            )

    def on_tool_end(self, output: Any, *, run_id: UUID, **kwargs: Any) -> None:
        found = self._step(run_id)
        if found is not None:
            run, step, parent = found
            details = mapping.tool_call(step.call_id, step.tool, step.arguments, getattr(output, "content", output))
            self._sender.send(events.step_completed(run, str(run_id), parent_step_id=parent, step_details=details))

    def on_tool_error(self, error: BaseException, *, run_id: UUID, **kwargs: Any) -> None:
        if _interrupt(error):  # the tool asked a human; it runs again, as a new step, when resumed
            found = self._step(run_id)
            if found is not None:
                self._sender.send(events.step_cancelled(found[0], str(run_id)))
            return
        self._step_failed(run_id, error)

    # --- bookkeeping -------------------------------------------------------------------------

    def _open_run(self, thread: str) -> dict[str, Any] | None:
        """The thread's newest run that has not finished; None when there is none or runstate
        cannot say (then a new run starts: better a second run than a lost one)."""
        try:
            runs = self._client.find_runs(thread_id=thread)
        except ClientError as failed:
            log.error("runstate.thread_lookup_failed thread_id=%s error=%r", thread, str(failed))
            return None
        return next((run for run in reversed(runs) if run["status"] in OPEN), None)

    def _join(self, run_id: UUID, parent: UUID) -> _Run | None:
        with self._lock:
            run = self._roots.get(parent)
            if run is not None:
                self._roots[run_id] = run
                run.members[run_id] = parent
            return run

    def _end(self, root: UUID, event: Any) -> None:
        with self._lock:
            run = self._roots.pop(root, None)
            if run is not None:
                for member in run.members:
                    self._roots.pop(member, None)
        if run is not None:
            self._sender.closed(run.run_id, event(run.run_id))

    def _model_started(self, kwargs: dict[str, Any]) -> None:
        run_id: UUID = kwargs["run_id"]
        metadata, params = kwargs.get("metadata") or {}, kwargs.get("invocation_params") or {}
        model = mapping.text(
            metadata.get("ls_model_name") or params.get("model") or params.get("model_name"), mapping.MAX_NAME
        )
        found = self._step_started(run_id, kwargs.get("parent_run_id"), _Step(model=model))
        if found is not None:
            run, parent = found
            created = events.step_created(run, str(run_id), type="message_creation", parent_step_id=parent, model=model)
            self._sender.send(created)

    def _step_started(self, run_id: UUID, parent: UUID | None, step: _Step) -> tuple[str, str | None] | None:
        """Remember the step; its runstate run and parent step."""
        run = self._join(run_id, parent) if parent is not None else None
        if run is None:
            return None  # a model or tool called outside any chain this handler saw start
        with self._lock:
            run.steps[run_id] = step
            return run.run_id, _parent_step(run, parent)

    def _step(self, run_id: UUID) -> tuple[str, _Step, str | None] | None:
        """The ended step's runstate run, what its start noted and its parent step; forgets it."""
        with self._lock:
            run = self._roots.get(run_id)
            step = run.steps.pop(run_id, None) if run is not None else None
            if run is None or step is None:
                return None
            return run.run_id, step, _parent_step(run, run.members.get(run_id))

    def _step_failed(self, run_id: UUID, error: BaseException) -> None:
        found = self._step(run_id)
        if found is not None:
            code, message = _error(error)
            self._sender.send(
                events.step_failed(found[0], str(run_id), parent_step_id=found[2], code=code, message=message)
            )


def _parent_step(run: _Run, parent: UUID | None) -> str | None:
    while parent is not None and parent not in run.steps:
        parent = run.members.get(parent)
    return str(parent) if parent is not None else None


def _interrupt(error: BaseException) -> bool:
    """LangGraph's GraphInterrupt (by name: this module must not need langgraph)."""
    return any(kind.__name__ == "GraphInterrupt" for kind in type(error).__mro__)


def _error(error: BaseException) -> tuple[str, str]:
    return type(error).__name__[: mapping.MAX_CODE], mapping.text(error) or ""
