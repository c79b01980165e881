"""A run's closed steps are kept apart from its document (`keys.steps`), so a drain reads and
writes only its open steps and the closed ones its events name. Each test drains in separate
commits, so the closed step an event names is one a drain must find outside the document."""

from decimal import Decimal

import orjson

from statemachine.deadlines import next_due
from statemachine.models import RunState
from statemachine.status import StepStatus
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
