"""The event format (docs/design.md, "Events"): what parse_event accepts, and how it names every refusal."""

import json
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from statemachine import Event, EventType, parse_event
from statemachine.errors import InvalidEvent
from statemachine.events import MAX_EVENT_BYTES, RunStarted, StepCompleted, Usage
from statemachine.timefmt import rfc3339

RUN = {"id": "evt_1", "type": "run.started", "run_id": "run_42"}
STEP = {"id": "evt_1", "type": "step.completed", "run_id": "run_42", "step_id": "step_7"}
TYPES = ", ".join(EventType)


def problems(raw: dict[str, Any] | str | bytes) -> tuple[str, ...]:
    text = raw if isinstance(raw, str | bytes) else json.dumps(raw)
    with pytest.raises(InvalidEvent) as caught:
        parse_event(text)
    assert caught.value.problems, "a refusal must say why"
    assert str(caught.value) == "invalid_event: " + "; ".join(caught.value.problems)
    return caught.value.problems


# --- accepted ---------------------------------------------------------------------------


def test_designs_example_event_parses_to_its_fields() -> None:
    text = (
        '{"id": "evt_8f2c", "type": "step.completed", "run_id": "run_42", "step_id": "step_7",'
        ' "occurred_at": "2026-11-25T10:00:03.250Z", "sequence": 9,'
        ' "data": {"usage": {"prompt_tokens": 812, "completion_tokens": 95, "cached_tokens": 512,'
        ' "reasoning_tokens": 0}, "cost_usd": 0.0031, "model": "gpt-4o",'
        ' "provider_name": "openai", "stop_reason": "end_turn"}}'
    )

    event = parse_event(text)

    assert isinstance(event, StepCompleted)
    assert (event.id, event.event_type, event.run_id, event.step_id, event.occurred_at, event.sequence) == (
        "evt_8f2c",
        EventType.STEP_COMPLETED,
        "run_42",
        "step_7",
        1_795_600_803_250,
        9,
    )
    assert event.data.usage == Usage(prompt_tokens=812, completion_tokens=95, cached_tokens=512, reasoning_tokens=0)
    assert (event.data.cost_usd, event.data.model, event.data.provider_name, event.data.stop_reason) == (
        Decimal("0.0031"),
        "gpt-4o",
        "openai",
        "end_turn",
    )


@pytest.mark.parametrize(
    ("occurred_at", "ms"),
    [
        ("2026-11-25T10:00:03.250Z", 1_795_600_803_250),
        ("2026-11-25T11:00:03.250+01:00", 1_795_600_803_250),
        ("2026-11-25t10:00:03z", 1_795_600_803_000),
        (1_795_600_803, 1_795_600_803_000),
        (1_795_600_803.25, 1_795_600_803_250),
        (0.001, 1),
        (None, None),
    ],
)
def test_occurred_at_is_rfc3339_with_an_offset_or_unix_seconds(occurred_at: object, ms: int | None) -> None:
    assert parse_event(json.dumps({**RUN, "occurred_at": occurred_at})).occurred_at == ms


def test_agent_id_is_accepted_for_assistant_id_on_run_started() -> None:
    by_alias = parse_event(json.dumps({**RUN, "data": {"agent_id": "asst_1"}}))
    by_name = parse_event(json.dumps({**RUN, "data": {"assistant_id": "asst_1"}}))

    assert isinstance(by_alias, RunStarted)
    assert by_alias.data.assistant_id == by_name.data.assistant_id == "asst_1"


def test_ids_may_use_every_allowed_character_and_128_of_them() -> None:
    key = "Az09_.:-" * 16
    event = parse_event(json.dumps({**STEP, "id": "e" * 128, "run_id": key, "step_id": key}))

    assert (len(event.id), event.run_id, event.step_id) == (128, key, key)


def test_sixteen_metadata_keys_of_64_characters_with_512_character_values_are_allowed() -> None:
    metadata = {f"{i:02d}".ljust(64, "k"): "v" * 512 for i in range(16)}

    assert parse_event(json.dumps({**RUN, "data": {"metadata": metadata}})).data.metadata == metadata


def test_an_event_of_exactly_the_size_limit_is_allowed() -> None:
    base = json.dumps({**STEP, "data": {"step_details": {"type": "tool_calls", "pad": ""}}})
    text = base.replace('"pad": ""', '"pad": "' + "x" * (MAX_EVENT_BYTES - len(base)) + '"')
    assert len(text.encode()) == MAX_EVENT_BYTES

    assert parse_event(text).data.step_details.type == "tool_calls"


# --- refused: every problem names its field and its rule --------------------------------


@pytest.mark.parametrize(
    ("raw", "expected"),
    [
        pytest.param(
            {**RUN, "data": {"metadata": {f"k{i}": "v" for i in range(17)}}},
            "data.metadata: metadata has 17 keys; at most 16 are allowed",
            id="17-metadata-keys",
        ),
        pytest.param(
            {**STEP, "data": {"metadata": {"k" * 65: "v"}}},
            "data.metadata: metadata key 'kkkkkkkkkkkkkkkkkkkk'… has 65 characters; at most 64 are allowed",
            id="65-character-metadata-key",
        ),
        pytest.param(
            {**RUN, "data": {"metadata": {"k": "v" * 513}}},
            "data.metadata: metadata value of 'k' has 513 characters; at most 512 are allowed",
            id="513-character-metadata-value",
        ),
        pytest.param(
            {**RUN, "data": {"metadata": {"k": 1}}},
            "data.metadata.k: Input should be a valid string",
            id="metadata-value-not-a-string",
        ),
        pytest.param(
            {**RUN, "run_id": "run_{42}"},
            "run_id: must be 1–128 characters of A–Z a–z 0–9 _ . : - (characters '{}' are not allowed)",
            id="run-id-braces",
        ),
        pytest.param(
            {**STEP, "step_id": "step}"},
            "step_id: must be 1–128 characters of A–Z a–z 0–9 _ . : - (characters '}' are not allowed)",
            id="step-id-brace",
        ),
        pytest.param(
            {**STEP, "run_id": "run 42"},
            "run_id: must be 1–128 characters of A–Z a–z 0–9 _ . : - (characters ' ' are not allowed)",
            id="run-id-space",
        ),
        pytest.param(
            {**STEP, "step_id": "stép"},
            "step_id: must be 1–128 characters of A–Z a–z 0–9 _ . : - (characters 'é' are not allowed)",
            id="step-id-not-ascii",
        ),
        pytest.param(
            {**RUN, "run_id": ""},
            "run_id: must be 1–128 characters of A–Z a–z 0–9 _ . : - (length is 0)",
            id="run-id-empty",
        ),
        pytest.param(
            {**RUN, "run_id": "r" * 129},
            "run_id: must be 1–128 characters of A–Z a–z 0–9 _ . : - (length is 129)",
            id="run-id-129",
        ),
        pytest.param({**RUN, "id": ""}, "id: String should have at least 1 character", id="id-empty"),
        pytest.param({**RUN, "id": "e" * 129}, "id: String should have at most 128 characters", id="id-129"),
        pytest.param(
            {**RUN, "occurred_at": "2026-11-25T10:00:03"},
            "occurred_at: must be an RFC 3339 time with an offset, like 2026-11-25T10:00:03.250Z"
            " (got '2026-11-25T10:00:03')",
            id="naive-occurred-at",
        ),
        pytest.param(
            {**RUN, "occurred_at": "1764064803"},
            "occurred_at: must be an RFC 3339 time with an offset, like 2026-11-25T10:00:03.250Z (got '1764064803')",
            id="numeric-string-occurred-at",
        ),
        pytest.param(
            {**RUN, "occurred_at": "2026-02-30T10:00:00Z"},
            "occurred_at: is not a valid time: day is out of range for month",
            id="impossible-date",
        ),
        pytest.param(
            {**RUN, "occurred_at": "1969-12-31T23:59:59Z"},
            "occurred_at: must not be before 1970 (got '1969-12-31T23:59:59Z')",
            id="before-1970",
        ),
        pytest.param(
            {**RUN, "occurred_at": "9989-12-31T23:59:59-01:00"},
            "occurred_at: must not be after 9989-12-31T23:59:59.999Z, so that deadlines after it stay dates"
            " (got '9989-12-31T23:59:59-01:00')",
            id="after-9989-in-utc",
        ),
        pytest.param(
            {**RUN, "occurred_at": -1},
            "occurred_at: Unix seconds must be between 0 and 253086767999 (got -1)",
            id="negative-unix-seconds",
        ),
        pytest.param(
            {**RUN, "occurred_at": True},
            "occurred_at: must be an RFC 3339 time with an offset or Unix seconds, not a boolean",
            id="boolean-occurred-at",
        ),
        pytest.param(
            '{"id": "evt_1", "type": "run.started", "run_id": "run_42", "occurred_at": NaN}',
            "occurred_at: Unix seconds must be between 0 and 253086767999 (got nan)",
            id="nan-occurred-at",
        ),
        pytest.param(
            '{"id": "evt_1", "type": "run.started", "run_id": "run_42", "occurred_at": Infinity}',
            "occurred_at: Unix seconds must be between 0 and 253086767999 (got inf)",
            id="infinite-occurred-at",
        ),
        pytest.param(
            '{"id": "e", "type": "step.failed", "run_id": "r", "step_id": "s", "data": {"cost_usd": NaN}}',
            "data.cost_usd: Input should be a finite number",
            id="nan-cost",
        ),
        pytest.param(
            '{"id": "e", "type": "run.started", "run_id": "r", "data": {"timeout_seconds": -Infinity}}',
            "data.timeout_seconds: must be a finite number of seconds (got -inf)",
            id="infinite-timeout",
        ),
        pytest.param(
            '{"id": "e", "type": "run.completed", "run_id": "r", "data": {"outputs": {"a": [1, NaN]}}}',
            "data.outputs: NaN and Infinity are not JSON numbers",
            id="nan-in-outputs",
        ),
        pytest.param(
            '{"id": "e", "type": "step.created", "run_id": "r", "step_id": "s",'
            ' "data": {"step_details": {"type": "tool_calls", "tool_calls": [{"score": Infinity}]}}}',
            "data.step_details: NaN and Infinity are not JSON numbers",
            id="infinity-in-step-details",
        ),
        pytest.param(
            {**STEP, "data": {"usage": {"prompt_tokens": 10**12 + 1}}},
            "data.usage.prompt_tokens: Input should be less than or equal to 1000000000000",
            id="huge-token-count",
        ),
        pytest.param(
            {**RUN, "sequence": 2**53 + 1},
            "sequence: Input should be less than or equal to 9007199254740992",
            id="huge-sequence",
        ),
        pytest.param(
            {**RUN, "data": {"timeout_seconds": 10**400}},
            f"data.timeout_seconds: must be at most 315360000 seconds (got {10**400})",
            id="huge-integer-timeout",
        ),
        pytest.param(
            {**RUN, "data": {"state": {"n": 2**64}}},
            "data.state: integers must fit in 64 bits",
            id="huge-integer-in-state",
        ),
        pytest.param(
            {"id": "e", "type": "run.completed", "run_id": "r", "data": {"outputs": {"n": -(2**63) - 1}}},
            "data.outputs: integers must fit in 64 bits",
            id="huge-negative-integer-in-outputs",
        ),
        pytest.param({**RUN, "sequence": 0}, "sequence: Input should be greater than or equal to 1", id="sequence-0"),
        pytest.param(
            {
                "id": "e",
                "type": "run.completed",
                "run_id": "r",
                "data": {"outputs": json.loads('{"a":' * 33 + "1" + "}" * 33)},
            },
            "data.outputs: nesting depth is 34; at most 32 is allowed",
            id="deep-outputs",
        ),
        pytest.param(
            '{"id": "e", "type": "step.created", "run_id": "r", "step_id": "s",'
            ' "data": {"step_details": {"type": "tool_calls", "tool_calls": ' + "[" * 40 + "]" * 40 + "}}}",
            "data.step_details: nesting depth is 41; at most 32 is allowed",
            id="deep-step-details",
        ),
        pytest.param(
            {"id": "e", "type": "run.completed", "run_id": "r", "data": {"outputs": {"a": "x" * 70_000}}},
            "data.outputs: is 70008 bytes as JSON; at most 65536 are allowed",
            id="outputs-over-64-KiB",
        ),
        pytest.param({**RUN, "sequence": "3"}, "sequence: Input should be a valid integer", id="sequence-as-string"),
        pytest.param({**RUN, "sequence": 3.0}, "sequence: Input should be a valid integer", id="sequence-as-float"),
        pytest.param({**RUN, "sequence": True}, "sequence: Input should be a valid integer", id="sequence-as-boolean"),
        pytest.param(
            {**STEP, "data": {"usage": {"prompt_tokens": "812"}}},
            "data.usage.prompt_tokens: Input should be a valid integer",
            id="tokens-as-string",
        ),
        pytest.param({**RUN, "data": []}, "data: Input should be an object", id="data-as-array"),
        pytest.param({**STEP, "data": {"tags": "a"}}, "data.tags: Input should be a valid array", id="tags-as-string"),
        pytest.param({**RUN, "id": 7}, "id: Input should be a valid string", id="id-as-number"),
        pytest.param(
            {**STEP, "data": {"type": "code"}},
            "data.type: Input should be 'message_creation' or 'tool_calls'",
            id="unknown-step-type",
        ),
        pytest.param(
            {"id": "e", "type": "run.failed", "run_id": "r", "data": {"error": {"message": "boom"}}},
            "data.error.code: Field required",
            id="error-without-code",
        ),
        pytest.param(
            {**RUN, "type": "run.paused"},
            f"type: 'run.paused' is not an event type; expected one of {TYPES}",
            id="unknown-event-type",
        ),
        pytest.param({"id": "e", "run_id": "r"}, f"type: field required; expected one of {TYPES}", id="missing-type"),
        pytest.param(
            {**RUN, "type": 3}, f"type: '3' is not an event type; expected one of {TYPES}", id="type-as-number"
        ),
        pytest.param(
            {"id": "e", "type": "step.created", "run_id": "r"}, "step_id: Field required", id="step-without-step-id"
        ),
        pytest.param(
            {**RUN, "step_id": "step_7"}, "step_id: unknown field; not allowed here", id="run-event-with-step-id"
        ),
        pytest.param({**RUN, "colour": "red"}, "colour: unknown field; not allowed here", id="unknown-field"),
        pytest.param(
            {**RUN, "data": {"outputs": {}}}, "data.outputs: unknown field; not allowed here", id="wrong-data"
        ),
        pytest.param({"type": "run.started", "run_id": "r"}, "id: Field required", id="missing-id"),
        pytest.param("[]", "event: Input should be an object", id="array"),
        pytest.param("", "not valid JSON: EOF while parsing a value at line 1 column 0", id="empty"),
    ],
)
def test_a_refusal_names_the_field_and_the_rule(raw: dict[str, Any] | str, expected: str) -> None:
    assert problems(raw) == (expected,)


def test_every_problem_of_an_event_is_named_at_once() -> None:
    raw = {"type": "run.started", "run_id": "r {1}", "occurred_at": "2026-11-25", "sequence": -1}

    assert problems(raw) == (
        "id: Field required",
        "run_id: must be 1–128 characters of A–Z a–z 0–9 _ . : - (characters ' {}' are not allowed)",
        "occurred_at: must be an RFC 3339 time with an offset, like 2026-11-25T10:00:03.250Z (got '2026-11-25')",
        "sequence: Input should be greater than or equal to 1",
    )


@pytest.mark.parametrize("as_bytes", [False, True], ids=["str", "bytes"])
def test_an_event_over_256_KiB_is_refused_before_it_is_parsed(as_bytes: bool) -> None:
    text = json.dumps({**STEP, "data": {"step_details": {"type": "tool_calls", "pad": "x" * MAX_EVENT_BYTES}}})
    size = len(text)

    assert problems(text.encode() if as_bytes else text) == (f"event is {size} bytes; at most 262144 are allowed",)


def test_the_size_limit_counts_bytes_not_characters() -> None:
    pad = "😀" * (MAX_EVENT_BYTES // 4)  # 4 bytes each in UTF-8: the event is over 256 KiB
    text = json.dumps({**STEP, "data": {"step_details": {"type": "tool_calls", "pad": pad}}}, ensure_ascii=False)
    assert len(text) < MAX_EVENT_BYTES < len(text.encode())

    assert problems(text) == (f"event is {len(text.encode())} bytes; at most 262144 are allowed",)


# --- anything at all: an Event or InvalidEvent, never another error ---------------------

STEP_DATA = {
    "type": "tool_calls",
    "step_details": {"type": "tool_calls", "tool_calls": []},
    "model": "gpt-4o",
    "expires_at": "2026-11-25T10:05:00Z",
    "tags": ["a"],
    "metadata": {"k": "v"},
}
FINISHED_DATA = {**STEP_DATA, "usage": {"prompt_tokens": 3}, "cost_usd": 0.25, "stop_reason": "end_turn"}
VALID_DATA = {
    "run.started": {"account_id": "acct_1", "agent_id": "asst_1", "timeout_seconds": 60, "state": {"a": 1}},
    "run.waiting": {"waiting_timeout_seconds": 30},
    "run.resumed": {},
    "run.completed": {"outputs": {"answer": "42"}},
    "run.failed": {"error": {"code": "INTERNAL_ERROR", "message": "boom"}},
    "run.cancelled": {},
    "run.timed_out": {},
    "step.created": STEP_DATA,
    "step.completed": FINISHED_DATA,
    "step.failed": {**FINISHED_DATA, "error": {"code": "server_error"}},
    "step.cancelled": STEP_DATA,
    "step.expired": STEP_DATA,
}


def valid_event(event_type: str) -> dict[str, Any]:
    raw: dict[str, Any] = {"id": "evt_1", "type": event_type, "run_id": "run_1", "occurred_at": 1_795_600_803}
    if event_type.startswith("step."):
        raw["step_id"] = "step_1"
    return {**raw, "data": dict(VALID_DATA[event_type])}


# every place a value can go: (event type, "envelope" or "data", field)
PLACES = [
    (event_type, where, name)
    for event_type in VALID_DATA
    for where, names in (
        ("envelope", ("id", "run_id", "step_id", "occurred_at", "sequence")),
        ("data", (*VALID_DATA[event_type], "timeout_seconds", "waiting_timeout_seconds", "unknown")),
    )
    for name in names
]
HOLE = "\x00hole"  # stands in for a value, so that it can be written as JSON text json.dumps would refuse


def with_value(event_type: str, where: str, name: str, value_text: str) -> str:
    """A valid event of `event_type` with one field set to `value_text`, a JSON (or JSON-like) literal."""
    raw = valid_event(event_type)
    (raw if where == "envelope" else raw["data"])[name] = HOLE
    return json.dumps(raw).replace(json.dumps(HOLE), value_text)


NUMBERS = [
    "NaN",
    "Infinity",
    "-Infinity",
    "1e999",
    "-1e999",
    "9" * 400,
    str(2**64),
    str(-(2**63) - 1),
    "-0",
    "1.5e-320",
]
STRINGS = ["", "x" * 300, "a{b} c", "9999-12-31T23:59:59-23:59", "2026-11-25T10:00:00", "1764064803", "\u0000"]
# every literal, and each inside the shapes the free-form fields take (a step_details must keep its type)
HAZARDS = [
    *NUMBERS,
    *(json.dumps(text) for text in STRINGS),
    *("true", "null", "[]", "{}", "[" * 40 + "]" * 40),
    *(f'{{"type": "tool_calls", "x": {n}}}' for n in NUMBERS),
    *(f'{{"type": "tool_calls", "x": [{{"y": [{n}]}}]}}' for n in NUMBERS),
    '{"type": "tool_calls", "x": ' + "[" * 40 + "]" * 40 + "}",
    '{"type": "tool_calls", "x": "' + "x" * 70_000 + '"}',
]


def test_every_field_given_every_hazard_parses_or_is_refused_with_problems() -> None:
    failures = []
    for event_type, where, name in PLACES:
        for hazard in HAZARDS:
            try:
                assert_parses_or_is_refused(with_value(event_type, where, name, hazard))
            except Exception as exc:  # collected, so that one run names every place that fails
                failures.append(f"{event_type} {where}.{name} = {hazard[:50]}: {exc!r}"[:300])
    assert failures == []


# --- and at random ----------------------------------------------------------------------

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4),
    max_leaves=8,
)


@st.composite
def nearly_events(draw: st.DrawFn) -> str:
    """A valid event with one of its fields set to any JSON value, or to one of the hazards."""
    event_type, where, name = draw(st.sampled_from(PLACES))
    value = draw(st.sampled_from(HAZARDS) | json_values.map(json.dumps))
    if name == "step_details" and value.startswith("{"):
        value = value.replace("{", '{"type": "tool_calls", ', 1).replace(", }", "}")
    return with_value(event_type, where, name, value)


def parsed_or_problems(text: str | bytes) -> Event | tuple[str, ...]:
    """The event, or the problems of its refusal; any other exception fails the test."""
    try:
        return parse_event(text)
    except InvalidEvent as refused:
        return refused.problems


def assert_parses_or_is_refused(text: str | bytes) -> None:
    event = parsed_or_problems(text)
    if isinstance(event, tuple):
        assert event, text
        assert all(isinstance(p, str) and p for p in event), text
        return
    assert event.event_type in set(EventType)
    # what was accepted is finite, strict JSON (mode="json" would hide a NaN as null) and its times render
    json.dumps(event.model_dump(), allow_nan=False, default=str)
    expires_at = getattr(event.data, "expires_at", None)
    assert all(rfc3339(ms) for ms in (event.occurred_at, expires_at) if ms is not None)


@settings(max_examples=100)
@given(json_values.map(json.dumps))
def test_any_json_parses_to_an_event_or_is_refused_with_problems(text: str) -> None:
    assert_parses_or_is_refused(text)


@settings(max_examples=200)
@given(nearly_events())
def test_any_value_in_any_field_of_a_valid_event_parses_or_is_refused_with_problems(text: str) -> None:
    assert_parses_or_is_refused(text)


@settings(max_examples=300)
@given(st.one_of(st.text(max_size=200), st.binary(max_size=200)))
def test_any_text_parses_to_an_event_or_is_refused_with_problems(text: str | bytes) -> None:
    assert_parses_or_is_refused(text)
