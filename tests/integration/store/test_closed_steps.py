"""A run's closed steps are kept apart from its document (`keys.steps`), so a drain reads and
writes only its open steps and the closed ones its events name. Each test drains in separate
commits, so the closed step an event names is one a drain must find outside the document."""

import itertools
import uuid
from decimal import Decimal

import orjson
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from statemachine.apply import Incoming, apply_event
from statemachine.deadlines import next_due
from statemachine.events import parse_event
from statemachine.models import RunState, Transition
from statemachine.status import Origin, StepStatus
from statemachine.timefmt import rfc3339
from tests.support.publishing import publish
from worker import reads
from worker.runtime import Runtime
from worker.store import keys
from worker.store.deletion import Deleter
from worker.store.keys import ref

RUN = ref("default", "r_long")


def _drain(runtime: Runtime, *events: dict[str, object]) -> None:
    publish(runtime, *({"run_id": "r_long", **e} for e in events))
    runtime.processor.drain([RUN])


def _document_steps(runtime: Runtime) -> list[str]:
    return list(orjson.loads(runtime.redis.hget(keys.run(RUN), "d") or b"{}").get("steps", {}))


def _usage(tokens: int) -> dict[str, object]:
    return {"usage": {"prompt_tokens": tokens, "completion_tokens": 1}, "cost_usd": "0.5"}


def test_closed_steps_leave_the_document_and_reads_show_every_step_in_creation_order(runtime: Runtime) -> None:
    _drain(runtime, {"id": "e0", "type": "run.started"})
    for n in range(5):
        _drain(runtime, {"id": f"c{n}", "type": "step.created", "step_id": f"s{n}"})
    for n in (3, 0, 1):  # closed out of order, each in its own commit
        _drain(runtime, {"id": f"d{n}", "type": "step.completed", "step_id": f"s{n}", "data": _usage(10)})

    assert _document_steps(runtime) == ["s2", "s4"]  # the open ones only
    assert sorted(runtime.redis.hkeys(keys.steps(RUN))) == [b"s0", b"s1", b"s3"]
    state = runtime.store.get(RUN)
    assert state is not None
    assert list(state.steps) == ["s0", "s1", "s2", "s3", "s4"]
    assert [s.status for s in state.steps.values()] == [StepStatus.COMPLETED] * 2 + [
        StepStatus.IN_PROGRESS,
        StepStatus.COMPLETED,
        StepStatus.IN_PROGRESS,
    ]
    shown = reads.run(runtime.store, RUN)
    assert (shown["usage"]["prompt_tokens"], shown["cost_usd"], shown["step_count"]) == (30, 1.5, 5)


def test_an_event_naming_a_closed_step_finds_it_and_counts_nothing_twice(runtime: Runtime) -> None:
    _drain(runtime, {"id": "e0", "type": "run.started"})
    _drain(runtime, {"id": "c1", "type": "step.created", "step_id": "s1"})
    _drain(runtime, {"id": "d1", "type": "step.completed", "step_id": "s1", "data": _usage(10)})
    # the same step again under new event ids: created again, completed again with more tokens
    _drain(runtime, {"id": "c1-again", "type": "step.created", "step_id": "s1"})
    _drain(runtime, {"id": "d1-again", "type": "step.completed", "step_id": "s1", "data": _usage(99)})

    history = [(t.id, t.from_, t.to) for t in runtime.store.history(RUN)]
    assert history == [("r_long", None, "running"), ("s1", None, "in_progress"), ("s1", "in_progress", "completed")]
    assert reads.run(runtime.store, RUN)["usage"]["prompt_tokens"] == 10
    stale = reads.stats(runtime.store)["by_type"]
    assert (stale["step.created"]["stale"], stale["step.completed"]["stale"]) == (1, 1)


def test_late_usage_on_a_closed_step_of_a_finished_run_is_billed_once(runtime: Runtime) -> None:
    _drain(runtime, {"id": "e0", "type": "run.started"})
    _drain(runtime, {"id": "c1", "type": "step.created", "step_id": "s1"})
    _drain(
        runtime, {"id": "x1", "type": "step.failed", "step_id": "s1", "data": {"error": {"code": "E", "message": "m"}}}
    )
    _drain(runtime, {"id": "z", "type": "run.completed"})
    _drain(runtime, {"id": "late", "type": "step.completed", "step_id": "s1", "data": _usage(7)})
    _drain(runtime, {"id": "late-again", "type": "step.completed", "step_id": "s1", "data": _usage(8)})

    state = runtime.store.get(RUN)
    assert state is not None
    step = state.steps["s1"]
    assert (step.status, step.usage and step.usage.prompt_tokens, step.cost_usd) == (
        StepStatus.FAILED,
        7,
        Decimal("0.5"),
    )
    assert [t.note for t in runtime.store.history(RUN)].count("late_usage") == 1


def test_a_finished_runs_closed_steps_and_step_index_expire_with_it(runtime: Runtime) -> None:
    _drain(runtime, {"id": "e0", "type": "run.started"})
    _drain(runtime, *({"id": f"c{n}", "type": "step.created", "step_id": f"s{n}"} for n in range(3)))
    _drain(runtime, {"id": "d0", "type": "step.completed", "step_id": "s0"})
    _drain(runtime, {"id": "z", "type": "run.completed"})  # closes s1 and s2 as cancelled

    redis = runtime.redis
    assert _document_steps(runtime) == []
    assert sorted(redis.hkeys(keys.steps(RUN))) == [b"s0", b"s1", b"s2"]
    run_ttl = redis.pttl(keys.run(RUN))
    assert run_ttl > 0
    others = [keys.steps(RUN), keys.step_order(RUN), *(keys.step_index("default", f"s{n}") for n in range(3))]
    assert all(abs(redis.pttl(key) - run_ttl) < 1_000 for key in others), [redis.pttl(k) for k in others]
    assert runtime.store.run_of_step("default", "s2") == RUN


def test_a_deleted_run_leaves_no_closed_steps_order_or_step_index(runtime: Runtime) -> None:
    _drain(runtime, {"id": "e0", "type": "run.started"})
    _drain(
        runtime,
        {"id": "c1", "type": "step.created", "step_id": "s1"},
        {"id": "c2", "type": "step.created", "step_id": "s2"},
    )
    _drain(runtime, {"id": "d1", "type": "step.completed", "step_id": "s1"})

    assert Deleter(runtime.redis, runtime.settings.retention).delete(RUN) is True
    redis = runtime.redis
    gone = [keys.steps(RUN), keys.step_order(RUN), keys.step_index("default", "s1"), keys.step_index("default", "s2")]
    assert [redis.exists(key) for key in gone] == [0, 0, 0, 0]


def test_the_drain_does_not_read_the_closed_steps_its_events_do_not_name(runtime: Runtime) -> None:
    _drain(runtime, {"id": "e0", "type": "run.started"})
    _drain(runtime, *({"id": f"c{n}", "type": "step.created", "step_id": f"s{n}"} for n in range(50)))
    _drain(runtime, *({"id": f"d{n}", "type": "step.completed", "step_id": f"s{n}"} for n in range(50)))
    publish(runtime, {"id": "c-new", "type": "step.created", "run_id": "r_long", "step_id": "s-new"})

    loaded = runtime.store.load([RUN], 10).runs[RUN]
    as_loaded = loaded.state()
    assert isinstance(as_loaded, RunState)
    assert next_due(as_loaded) is not None  # the run's own deadline: the document alone answers it
    assert len(loaded.document or b"") < 2_000  # no closed step inside, however many the run has
    runtime.processor.drain([RUN])
    state = runtime.store.get(RUN)
    assert state is not None
    assert (len(state.steps), list(state.steps)[-1]) == (51, "s-new")


step_ids = st.sampled_from(["s0", "s1", "s2", "s3"])
step_events = st.tuples(
    st.sampled_from(["step.created", "step.completed", "step.failed", "step.cancelled", "run.completed"]),
    step_ids,
    st.integers(min_value=0, max_value=50),  # tokens; 0: no usage reported
)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(script=st.lists(step_events, min_size=1, max_size=25), cuts=st.lists(st.integers(1, 25), max_size=6))
def test_drained_in_any_commits_a_run_is_what_one_pass_makes_of_its_events(
    runtime: Runtime, script: list[tuple[str, str, int]], cuts: list[int]
) -> None:
    """Steps closed in one commit and named again in a later one (completed twice, created again,
    late usage after the run's end): the run read back whole is the pure domain's, event for event."""
    run_id = f"r_prop_{uuid.uuid4().hex}"
    at = runtime.store.now_ms()
    events: list[dict[str, object]] = [
        {"id": "e_start", "type": "run.started", "run_id": run_id, "occurred_at": rfc3339(at)}
    ]
    for n, (kind, step_id, tokens) in enumerate(script):
        event: dict[str, object] = {"id": f"e{n}", "type": kind, "run_id": run_id, "occurred_at": rfc3339(at + n + 1)}
        if kind != "run.completed":
            event["step_id"] = step_id
        if kind in ("step.completed", "step.failed") and tokens:
            event["data"] = {"usage": {"prompt_tokens": tokens, "completion_tokens": 1}}
        events.append(event)
    bounds = sorted({0, len(events), *(c for c in cuts if c < len(events))})
    for first, last in itertools.pairwise(bounds):  # each slice its own publish and commit
        publish(runtime, *events[first:last])
        runtime.processor.drain([ref("default", run_id)])

    stored = runtime.store.get(ref("default", run_id))
    assert stored is not None
    expected, history = _one_pass(events, now=runtime.store.now_ms())
    assert _comparable(stored) == _comparable(expected)
    assert _records(runtime.store.history(ref("default", run_id))) == _records(history)


def _one_pass(events: list[dict[str, object]], now: int) -> tuple[RunState, list[Transition]]:
    """What the pure domain makes of these events in one uninterrupted pass, every step at hand."""
    state: RunState | None = None
    seen: set[str] = set()
    history: list[Transition] = []
    for raw in events:
        event = parse_event(orjson.dumps(raw))
        result = apply_event(state, Incoming(event, Origin.EVENT, "default"), now=now, seen=seen)
        if result.remember_id:
            seen.add(event.id)
        assert isinstance(result.state, RunState)
        state, history = result.state, [*history, *result.history]
    assert state is not None
    return state, history


def _comparable(state: RunState) -> dict[str, object]:
    return {"run": state.run.model_dump(), "steps": [(i, s.model_dump()) for i, s in state.steps.items()]}


def _records(history: list[Transition]) -> list[tuple[object, ...]]:
    """The records less when they were applied (the drains' clock, not the one pass's)."""
    return [(t.n, t.id, t.from_, t.to, t.event_id, t.origin, t.at, t.note) for t in history]
