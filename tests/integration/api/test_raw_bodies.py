"""Raw bodies no schema describes, fuzzed with Hypothesis against the app on the test
redis-server: random bytes, nesting at any depth, huge numbers, wrong content types. Every one
gets a 4xx in the one error shape, never a 5xx; an event nested deep is refused naming the limit."""

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.support.apikit import A, api_client
from worker.api.events import MAX_EVENT_DEPTH
from worker.runtime import Runtime

ROUTES = ["/v1/events", "/v1/webhooks", "/v1/run/r1/cancel"]
CONTENT_TYPES = ["application/json", "text/plain", "application/x-www-form-urlencoded", "multipart/form-data", ""]
FUZZ = settings(
    max_examples=150, derandomize=True, database=None, deadline=None, suppress_health_check=list(HealthCheck)
)


@pytest.fixture
def api(runtime: Runtime, monkeypatch: pytest.MonkeyPatch) -> Iterator[TestClient]:
    with api_client(runtime, monkeypatch) as client:
        yield client


def _nested(depth: int, leaf: bytes = b"1") -> bytes:
    return b'{"a":' * depth + leaf + b"}" * depth


def _event_with_data(data: bytes) -> bytes:
    return b'{"id":"e1","type":"run.started","run_id":"r1","data":{"state":' + data + b"}}"


bodies = st.one_of(
    st.binary(max_size=2_000),
    st.integers(1, 3_000).map(_nested),
    st.integers(1, 3_000).map(lambda d: b"[" * d + b"]" * d),
    st.integers(1, 1_500).map(lambda d: _event_with_data(_nested(d))),
    st.integers(0, 400).map(lambda n: _event_with_data(b'{"n":' + b"9" * n + b"}")),
    st.sampled_from([b"1e999", b"-1e999", b"NaN", b'{"n": 1e400}', b"18446744073709551616", b"null", b"[]", b'""']),
)


@FUZZ
@given(body=bodies, route=st.sampled_from(ROUTES), content_type=st.sampled_from(CONTENT_TYPES))
def test_no_raw_body_gets_a_5xx(api: TestClient, body: bytes, route: str, content_type: str) -> None:
    answer = api.post(route, content=body, headers={**A, "content-type": content_type})
    assert 200 <= answer.status_code < 500, (answer.status_code, answer.text)
    if answer.status_code >= 400:
        assert list(answer.json()) == ["error"]


@pytest.mark.parametrize("depth", [MAX_EVENT_DEPTH, 253, 254, 600, 1_021])
def test_an_event_nested_past_the_limit_is_a_400_naming_it(api: TestClient, depth: int) -> None:
    event = _event_with_data(_nested(depth - 2))  # inside the event and its data
    assert _measured(event) == depth
    answer = api.post("/v1/events", content=event, headers=A)
    assert answer.status_code == 400
    reasons = answer.json()["error"]["rejected"]
    if depth > MAX_EVENT_DEPTH:
        assert reasons == [
            {"index": 0, "error": f"event nests {depth} levels deep; at most {MAX_EVENT_DEPTH} are allowed"}
        ]
    else:  # within the body's limit: the event's own rule for its data says what is wrong
        assert "nesting depth is" in reasons[0]["error"]


def test_a_body_past_the_parsers_depth_is_a_400_naming_the_limit(api: TestClient) -> None:
    answer = api.post("/v1/events", content=_nested(5_000), headers=A)
    assert (answer.status_code, answer.json()) == (
        400,
        {
            "error": {
                "code": "INVALID_INPUT",
                "message": f"body nests too deep; an event may nest at most {MAX_EVENT_DEPTH} levels",
            }
        },
    )


def _measured(text: bytes) -> int:
    deepest = level = 0
    for byte in text:
        level += (byte in b"{[") - (byte in b"}]")
        deepest = max(deepest, level)
    return deepest
