"""`Sender`, on a mocked runstate: events go out in order, and what runstate refuses (or a
server that answers only errors) is logged, never raised into the agent's thread."""

import logging

import httpx
import orjson
import pytest
import stamina

import runstate
from runstate import events
from runstate.integrations.sender import Sender


def _client(answer: httpx.Response, seen: list[str]) -> runstate.Client:
    def handler(request: httpx.Request) -> httpx.Response:
        seen.extend(event["id"] for event in orjson.loads(request.content))
        return answer

    return runstate.Client("http://runstate.test", "tok", transport=httpx.MockTransport(handler))


def test_refused_events_are_logged_with_their_reason_and_the_rest_go_on(caplog: pytest.LogCaptureFixture) -> None:
    seen: list[str] = []
    refused = {"accepted": 1, "rejected": [{"index": 1, "error": "type: 'run.heartbeat' is not an event type"}]}
    sender = Sender(_client(httpx.Response(202, json=refused), seen))
    with caplog.at_level(logging.WARNING, logger="runstate.integrations"):
        sender.send(events.run_started("r1", id="e1"), events.run_heartbeat("r1", id="e2"))
        assert sender.flush(timeout=10)
        sender.shutdown()

    assert seen == ["e1", "e2"]
    assert [r.getMessage() for r in caplog.records] == [
        "runstate.event_refused event_id=e2 reason=\"type: 'run.heartbeat' is not an event type\""
    ]


def test_a_server_that_refuses_every_request_is_logged_and_the_sender_goes_on(
    caplog: pytest.LogCaptureFixture,
) -> None:
    seen: list[str] = []
    sender = Sender(_client(httpx.Response(401, json={"error": {"code": "UNAUTHORIZED", "message": "no"}}), seen))
    with caplog.at_level(logging.ERROR, logger="runstate.integrations"), stamina.set_testing(True):
        sender.send(events.run_started("r1", id="e1"))
        assert sender.flush(timeout=10)
        sender.send(events.run_completed("r1", id="e2"))
        assert sender.flush(timeout=10)
        sender.shutdown()

    assert seen == ["e1", "e2"]
    assert [r.getMessage() for r in caplog.records] == [
        "runstate.publish_failed events=1 error='401 UNAUTHORIZED: no'",
        "runstate.publish_failed events=1 error='401 UNAUTHORIZED: no'",
    ]


def test_a_heartbeat_interval_must_be_positive() -> None:
    with pytest.raises(ValueError, match="heartbeat_every is 0; it must be a positive number of seconds"):
        Sender(_client(httpx.Response(202), []), heartbeat_every=0)
