"""`heartbeat_every` on both live adapters, against a mocked runstate (httpx's MockTransport):
while a run is open a `run.heartbeat` goes out at that interval, and none after the run ended."""

import threading
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import orjson
import pytest
from agents import set_trace_processors, trace
from langchain_core.runnables import RunnableLambda

import runstate
from runstate.integrations.langchain import RunstateCallbackHandler
from runstate.integrations.openai_agents import RunstateTracingProcessor
from tests.support.processes import wait_until

EVERY = 0.02  # seconds


class Recorder:
    """A runstate that accepts every event, in the order the adapter sent them."""

    def __init__(self) -> None:
        self.sent: list[dict[str, Any]] = []
        self._lock = threading.Lock()

    def __call__(self, request: httpx.Request) -> httpx.Response:
        batch = orjson.loads(request.content)
        with self._lock:
            self.sent += batch
        return httpx.Response(202, json={"accepted": len(batch), "rejected": []})

    def types(self, run_id: str) -> list[str]:
        with self._lock:
            return [event["type"] for event in self.sent if event["run_id"] == run_id]

    def beats(self, run_id: str) -> int:
        return self.types(run_id).count("run.heartbeat")


@pytest.fixture
def recorder() -> Recorder:
    return Recorder()


@pytest.fixture
def client(recorder: Recorder) -> Iterator[runstate.Client]:
    with runstate.Client("http://runstate.test", "tok", transport=httpx.MockTransport(recorder)) as made:
        yield made


def _beats_then_ends(recorder: Recorder, run_id: str) -> None:
    """Heartbeats came while the run was open, and the run's last event ends it."""
    types = recorder.types(run_id)
    assert types[0] == "run.started"
    assert types.count("run.heartbeat") >= 3
    assert set(types[1:-1]) == {"run.heartbeat"}
    assert types[-1] == "run.completed"


def test_the_tracing_processor_sends_heartbeats_while_a_trace_is_open(
    recorder: Recorder, client: runstate.Client
) -> None:
    processor = RunstateTracingProcessor(client, heartbeat_every=EVERY)
    set_trace_processors([processor])
    try:
        with trace("first") as first:
            wait_until(lambda: recorder.beats(first.trace_id) >= 3, timeout=10, every=0.01)
        with trace("second") as second:  # the first is over: it must hear no more while this one beats
            wait_until(lambda: recorder.beats(second.trace_id) >= 3, timeout=10, every=0.01)
        processor.shutdown()
    finally:
        set_trace_processors([])

    _beats_then_ends(recorder, first.trace_id)
    _beats_then_ends(recorder, second.trace_id)


def test_the_callback_handler_sends_heartbeats_while_its_root_run_is_open(
    recorder: Recorder, client: runstate.Client
) -> None:
    handler = RunstateCallbackHandler(client, heartbeat_every=EVERY)
    root = uuid.uuid4()  # the root run's id is the runstate run's

    def slow(text: str) -> str:  # a long model call, say: the run must look alive meanwhile
        wait_until(lambda: recorder.beats(str(root)) >= 3, timeout=10, every=0.01)
        return text

    RunnableLambda(slow).invoke("a", config={"callbacks": [handler], "run_id": root})
    handler.shutdown()

    _beats_then_ends(recorder, str(root))
