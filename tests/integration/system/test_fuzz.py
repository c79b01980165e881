"""Hostile input, fuzzed and pinned: the publisher refuses it line by line (a line that is not
UTF-8 too), and a worker fed it directly (a forged or unreadable inbox entry) rejects each with a
reason, never stops, and holds back no other run."""

import json

import orjson
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.support.processes import runstate
from tests.support.publishing import publish, refs
from worker.runtime import Runtime
from worker.store import keys
from worker.store.keys import ref

RUN = "r_fuzz"
TYPES = ["run.started", "step.completed", "run.nope", 3]
NAN_TIME = '{"id": "e", "type": "run.started", "run_id": "r_fuzz", "occurred_at": NaN}'
SLOW_OK = settings(deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])


def _started(metadata: dict[str, str]) -> str:
    return json.dumps({"id": "e", "type": "run.started", "run_id": RUN, "data": {"metadata": metadata}})


def _nested(depth: int) -> str:
    return '{"a":' * depth + "1" + "}" * depth


hostile_values = st.one_of(
    st.integers(min_value=-(2**200), max_value=2**200),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=50),
    st.just("x" * 300_000),
    st.booleans(),
    st.none(),
    st.lists(st.integers(), max_size=3),
)

hostile_ids = st.one_of(st.text(max_size=140), st.sampled_from(["{r}", "r}", "a b", "", "x" * 129]), hostile_values)

hostile_events = st.one_of(
    st.fixed_dictionaries(
        {
            "id": hostile_ids,
            "type": st.sampled_from(["run.started", "step.completed", "run.nope", 3]),
            "run_id": hostile_ids,
        },
        optional={
            "step_id": hostile_ids,
            "occurred_at": hostile_values,
            "sequence": hostile_values,
            "data": hostile_values,
        },
    ).map(lambda e: json.dumps(e, allow_nan=True)),
    st.integers(min_value=17, max_value=40).map(
        lambda n: json.dumps(
            {"id": "e", "type": "run.started", "run_id": RUN, "data": {"metadata": {str(i): "v" for i in range(n)}}}
        )
    ),
    st.just(json.dumps({"id": "e", "type": "run.started", "run_id": RUN, "data": {"metadata": {"k" * 65: "v"}}})),
    st.integers(min_value=33, max_value=3000).map(
        lambda d: '{"id": "e", "type": "run.completed", "run_id": "r_fuzz", "data": {"outputs": ' + _nested(d) + "}}"
    ),
    st.sampled_from(
        ['{"id": "e", "type": "run.started", "run_id": "r_fuzz", "occurred_at": NaN}', "[]", "null", "{", "\x00"]
    ),
    st.text(max_size=200),
)


@settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow]
)
@given(entries=st.lists(hostile_events, min_size=1, max_size=8))
def test_forged_inbox_entries_are_each_rejected_with_a_reason(runtime: Runtime, entries: list[str]) -> None:
    runtime.redis.flushdb()
    envelopes = [orjson.dumps([text, "default", "event", 0]) for text in entries] + [
        b"not an envelope",
        b'["x", 1, "nope", 0]',
        b'["x", null, "event", -1]',
    ]
    runtime.store.append({ref("default", RUN): envelopes})

    report = runtime.processor.drain(refs(RUN))

    assert runtime.redis.llen(keys.inbox(ref("default", RUN))) == 0
    records = list(runtime.store.rejected())
    outcomes = report.outcomes
    assert sum(outcomes.values()) - outcomes.get("late_usage", 0) == len(envelopes)
    assert len(records) >= 2
    assert all(r["reason"] in {"invalid_event", "illegal_transition", "account_mismatch"} for r in records)
    assert all(isinstance(r["detail"], str) and r["detail"] for r in records)


@settings(
    max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow]
)
@given(entries=st.lists(hostile_events, min_size=1, max_size=5))
def test_publish_reports_every_hostile_line_with_its_number(
    redis_url: str, runtime: Runtime, entries: list[str]
) -> None:
    lines = [e.replace("\n", " ").replace("\r", " ") for e in entries]
    body = ("\n".join(lines) + "\n").encode("utf-8", "surrogatepass")
    result = runstate(["publish", "-"], redis_url, stdin=body)
    reported = [line for line in result.stderr.decode(errors="replace").splitlines() if line.startswith("line ")]
    accepted = int(result.stderr.decode(errors="replace").split("published ")[1].split(" ")[0])
    blank = sum(1 for line in lines if not line.strip())
    assert accepted + len(reported) + blank == len(lines)
    assert result.returncode == (1 if reported else 0)
    assert all(len(line.split(": ", 1)) == 2 and line.split(": ", 1)[1] for line in reported)


def test_an_unreadable_inbox_entry_is_rejected_and_blocks_no_other_run(runtime: Runtime) -> None:
    publish(runtime, {"id": "a", "type": "run.started", "run_id": "r_good"})
    runtime.redis.rpush(keys.inbox(ref("default", "r_bad")), b"\xff\xfe not utf-8")
    report = runtime.processor.drain(refs("r_bad", "r_good"))
    assert report.failures == 0
    assert runtime.store.get(ref("default", "r_good")) is not None
    assert [r["detail"] for r in runtime.store.rejected()] == ["queued entry: not valid UTF-8"]
    assert runtime.redis.llen(keys.inbox(ref("default", "r_bad"))) == 0


def test_publish_reports_a_line_that_is_not_utf8_and_keeps_the_rest(redis_url: str, runtime: Runtime) -> None:
    body = b'{"id": "a", "type": "run.started", "run_id": "r_u"}\n' + b"\xff\xfe\n"
    body += b'{"id": "b", "type": "run.completed", "run_id": "r_u"}\n'
    published = runstate(["publish", "-"], redis_url, stdin=body)
    assert published.returncode == 1
    assert "line 2: not valid UTF-8" in published.stderr.decode()
    assert runtime.redis.llen(keys.inbox(ref("default", "r_u"))) == 2
