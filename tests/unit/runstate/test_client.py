"""`runstate.Client`'s retries and batching, on httpx's MockTransport (no server, no waits)."""

from collections.abc import Iterator
from decimal import Decimal

import httpx
import orjson
import pytest
import stamina

import runstate
from runstate import events


@pytest.fixture(autouse=True)
def _no_waits() -> Iterator[None]:
    with stamina.set_testing(True, attempts=4):
        yield


def test_a_transient_failure_is_retried_with_the_same_event_ids() -> None:
    bodies: list[bytes] = []
    answers = iter(
        [httpx.Response(503), httpx.Response(429, headers={"retry-after": "1"}), None],
    )

    def handler(request: httpx.Request) -> httpx.Response:
        bodies.append(request.content)
        answer = next(answers)
        return answer or httpx.Response(202, json={"accepted": 2, "rejected": []})

    client = runstate.Client("http://runstate.test", "tok", transport=httpx.MockTransport(handler))
    accepted = client.publish([events.run_started("r1", id="e1"), events.run_completed("r1", id="e2")])

    assert accepted == 2
    assert len(bodies) == 3
    assert len(set(bodies)) == 1  # the same ids, each time
    assert [e["id"] for e in orjson.loads(bodies[0])] == ["e1", "e2"]


def test_a_server_that_stays_down_is_one_request_failure() -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection refused", request=request)

    client = runstate.Client("http://runstate.test", "tok", transport=httpx.MockTransport(handler))
    with pytest.raises(runstate.RequestFailed) as failed:
        client.publish([events.run_started("r1")])

    assert (failed.value.status, failed.value.code) == (None, "UNREACHABLE")


def test_events_are_sent_in_batches_and_decimal_costs_keep_their_digits() -> None:
    sizes: list[int] = []
    texts: list[bytes] = []

    def handler(request: httpx.Request) -> httpx.Response:
        sent = orjson.loads(request.content)
        sizes.append(len(sent))
        texts.append(request.content)
        return httpx.Response(202, json={"accepted": len(sent), "rejected": []})

    client = runstate.Client("http://runstate.test", "tok", batch_size=2, transport=httpx.MockTransport(handler))
    cost = Decimal("0.000000123456789012")
    accepted = client.publish([events.step_completed("r1", f"s{i}", cost_usd=cost) for i in range(5)])

    assert (accepted, sizes) == (5, [2, 2, 1])
    assert b'"cost_usd":0.000000123456789012' in texts[0]


def test_the_builders_send_only_the_fields_given() -> None:
    event = events.step_completed(
        "r1", "s1", id="e1", occurred_at=1_764_064_800, usage={"prompt_tokens": 3}, name="search", parent_step_id="s0"
    )

    assert event == {
        "id": "e1",
        "type": "step.completed",
        "run_id": "r1",
        "step_id": "s1",
        "occurred_at": 1_764_064_800,
        "data": {"name": "search", "parent_step_id": "s0", "usage": {"prompt_tokens": 3}},
    }
    assert events.run_heartbeat("r1", id="h1", occurred_at="2026-11-25T10:00:00Z") == {
        "id": "h1",
        "type": "run.heartbeat",
        "run_id": "r1",
        "occurred_at": "2026-11-25T10:00:00Z",
    }


def test_the_public_surface_is_listed_and_typed() -> None:
    from pathlib import Path

    assert sorted(runstate.__all__) == ["Client", "ClientError", "EventsRefused", "Refusal", "RequestFailed", "events"]
    assert all(hasattr(runstate, name) for name in runstate.__all__)
    assert (Path(runstate.__file__).parent / "py.typed").is_file()
