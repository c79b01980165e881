"""Deadlines fire through the same apply path as events, from every worker's sweep:
never early, never twice, never lost, and event time decides races."""

import signal
import time

import orjson

from statemachine.status import RUN_TERMINAL
from tests.support.invariants import history_problems, stamp_problems
from tests.support.processes import runstate, start_worker, stop, wait_until
from tests.support.publishing import publish, refs
from worker.runtime import Runtime
from worker.store.keys import ref


def _status(runtime: Runtime, run_id: str, step_id: str | None = None) -> str | None:
    state = runtime.store.get(ref("default", run_id))
    if state is None:
        return None
    if step_id is None:
        return state.run.status.value
    step = state.steps.get(step_id)
    return None if step is None else step.status.value


def _start_runs(runtime: Runtime, runs: list[str], start: float, timeout: float = 1) -> None:
    """run.started for each, all at `start`, each timing out after `timeout` seconds."""
    data = {"timeout_seconds": timeout}
    publish(
        runtime, *({"id": "a", "type": "run.started", "run_id": r, "occurred_at": start, "data": data} for r in runs)
    )


def _now(runtime: Runtime) -> float:
    return runtime.store.now_ms() / 1000


def test_a_run_times_out_at_its_deadline_and_closes_its_open_steps(redis_url: str, runtime: Runtime) -> None:
    start = _now(runtime)
    publish(
        runtime,
        {"id": "a", "type": "run.started", "run_id": "r_to", "occurred_at": start, "data": {"timeout_seconds": 1}},
        {"id": "b", "type": "step.created", "run_id": "r_to", "step_id": "s1", "occurred_at": start},
    )
    worker = start_worker(redis_url)
    try:
        wait_until(lambda: _status(runtime, "r_to") == "timeout", timeout=30)
    finally:
        stop(worker)
    state = runtime.store.get(ref("default", "r_to"))
    assert state is not None
    deadline = int(start * 1000) + 1000
    assert (state.run.completed_at, state.run.error.code if state.run.error else None) == (deadline, "TIMEOUT")
    assert (state.steps["s1"].status, state.steps["s1"].expired_at) == ("expired", deadline)
    timeout, expiry = runtime.store.history(ref("default", "r_to"))[-2:]
    assert (timeout.to, timeout.origin, timeout.at, timeout.event_type) == (
        "timeout",
        "deadline",
        deadline,
        "run.timed_out",
    )
    assert (expiry.to, expiry.at) == ("expired", deadline)
    assert timeout.applied_at >= timeout.at  # never early
    assert runtime.store.stats()["deadlines"] == 1


def test_a_wait_times_out_and_a_step_expires_without_ending_its_run(redis_url: str, runtime: Runtime) -> None:
    start = _now(runtime)
    publish(
        runtime,
        {"id": "a", "type": "run.started", "run_id": "r_wait", "occurred_at": start},
        {
            "id": "b",
            "type": "run.waiting",
            "run_id": "r_wait",
            "occurred_at": start,
            "data": {"waiting_timeout_seconds": 1},
        },
        {"id": "c", "type": "run.started", "run_id": "r_step", "occurred_at": start},
        {
            "id": "d",
            "type": "step.created",
            "run_id": "r_step",
            "step_id": "s1",
            "occurred_at": start,
            "data": {"expires_at": start + 1},
        },
    )
    worker = start_worker(redis_url)
    try:
        wait_until(lambda: _status(runtime, "r_wait") == "timeout", timeout=30)
        wait_until(lambda: _status(runtime, "r_step", "s1") == "expired", timeout=30)
    finally:
        stop(worker)
    waited = runtime.store.get(ref("default", "r_wait"))
    stepped = runtime.store.get(ref("default", "r_step"))
    assert waited is not None
    assert stepped is not None
    assert waited.run.error is not None
    assert waited.run.error.message == "run waited for input longer than its waiting timeout"
    assert stepped.run.status == "running"
    assert stepped.steps["s1"].expired_at == int(start * 1000) + 1000


def test_a_completion_that_occurred_before_the_deadline_wins_even_applied_after_it(
    redis_url: str, runtime: Runtime
) -> None:
    start = _now(runtime) - 10  # both happened ten seconds ago; nobody applied them until now
    publish(
        runtime,
        {"id": "a", "type": "run.started", "run_id": "r_win", "occurred_at": start, "data": {"timeout_seconds": 2}},
        {"id": "b", "type": "run.completed", "run_id": "r_win", "occurred_at": start + 1.5},
        {"id": "c", "type": "run.started", "run_id": "r_late", "occurred_at": start, "data": {"timeout_seconds": 2}},
        {"id": "d", "type": "run.completed", "run_id": "r_late", "occurred_at": start + 2.5},
    )
    assert runstate(["worker", "--burst"], redis_url).returncode == 0
    won, lost = runtime.store.get(ref("default", "r_win")), runtime.store.get(ref("default", "r_late"))
    assert won is not None
    assert lost is not None
    assert (won.run.status, won.run.completed_at) == ("completed", int((start + 1.5) * 1000))
    assert (lost.run.status, lost.run.completed_at) == ("timeout", int(start * 1000) + 2000)
    assert [t.origin for t in runtime.store.history(ref("default", "r_late"))] == ["event", "deadline"]


def test_a_completion_published_before_the_deadline_wins_even_applied_after_it(runtime: Runtime) -> None:
    start = _now(runtime)
    _start_runs(runtime, ["r_sent"], start)
    runtime.processor.drain(refs("r_sent"))  # the run exists, due to time out a second in
    assert runtime.store.get(ref("default", "r_sent")).run.timeout_at == int(start * 1000) + 1000  # type: ignore[union-attr]
    publish(runtime, {"id": "b", "type": "run.completed", "run_id": "r_sent"})  # no occurred_at: sent now
    wait_until(lambda: _now(runtime) > start + 1.1)  # the deadline passes before any worker applies it
    runtime.processor.drain(refs("r_sent"))
    state = runtime.store.get(ref("default", "r_sent"))
    assert state is not None
    assert state.run.status == "completed"  # its publish time decides the race, not its apply time
    assert state.run.completed_at is not None
    assert state.run.completed_at < int(start * 1000) + 1000


def test_deadlines_that_passed_while_no_worker_ran_fire_when_one_starts(redis_url: str, runtime: Runtime) -> None:
    start = _now(runtime)
    runs = [f"r_out_{n}" for n in range(50)]
    _start_runs(runtime, runs, start, timeout=5)
    runtime.processor.drain(refs(*runs))  # the runs exist; then every worker is gone
    assert {_status(runtime, r) for r in runs} == {"running"}
    time.sleep(max(0.0, start + 5.2 - _now(runtime)))  # the outage, during which every deadline passes
    assert runstate(["worker", "--burst"], redis_url).returncode == 0
    states = [runtime.store.get(ref("default", r)) for r in runs]
    assert {(s.run.status, s.run.completed_at) for s in states if s} == {("timeout", int(start * 1000) + 5000)}
    assert len([s for s in states if s]) == len(runs)


def test_completion_against_deadline_at_the_same_instant_ends_each_run_exactly_once(
    redis_url: str, runtime: Runtime
) -> None:
    workers = [start_worker(redis_url) for _ in range(2)]
    try:
        start = _now(runtime)
        runs = [f"r_same_{n}" for n in range(1000)]
        _start_runs(runtime, runs, start)
        time.sleep(max(0.0, start + 1 - _now(runtime)))  # publish the completions as the deadlines fall due
        publish(runtime, *({"id": "z", "type": "run.completed", "run_id": r, "occurred_at": start + 1} for r in runs))
        wait_until(lambda: all(runtime.redis.llen(f"runstate:inbox:{{default/{r}}}") == 0 for r in runs), timeout=60)
    finally:
        for worker in workers:
            stop(worker)
    outcomes = {"completed": 0, "timeout": 0}
    for run_id in runs:
        state = runtime.store.get(ref("default", run_id))
        assert state is not None
        history = runtime.store.history(ref("default", run_id))
        terminal = [t for t in history if t.object == "run" and t.to in RUN_TERMINAL]
        assert len(terminal) == 1, history
        assert state.run.completed_at == int(start * 1000) + 1000
        assert stamp_problems(state) == []
        assert history_problems(state, history) == []
        outcomes[state.run.status] += 1
    assert sum(outcomes.values()) == 1000


def test_a_sweeper_stopped_past_its_lease_and_continued_fires_nothing_twice(redis_url: str, runtime: Runtime) -> None:
    lease = {"RUNSTATE_RECOVER_AFTER": "1"}
    paused = start_worker(redis_url, **lease)
    other = start_worker(redis_url, **lease)
    try:
        start = _now(runtime)
        runs = [f"r_stop_{n}" for n in range(300)]
        publish(
            runtime,
            *(
                {
                    "id": "a",
                    "type": "run.started",
                    "run_id": r,
                    "occurred_at": start,
                    "data": {"timeout_seconds": 1 + (n % 30) / 10},
                }
                for n, r in enumerate(runs)
            ),
        )
        time.sleep(max(0.0, start + 1.2 - _now(runtime)))
        paused.send_signal(signal.SIGSTOP)
        time.sleep(2.5)  # past the lease: the other worker claims what the paused one held
        paused.send_signal(signal.SIGCONT)
        wait_until(lambda: all(_status(runtime, r) == "timeout" for r in runs), timeout=60)
        time.sleep(1.5)  # let the continued sweeper finish whatever it was doing
    finally:
        stop(paused)
        stop(other)
    for n, run_id in enumerate(runs):
        history = runtime.store.history(ref("default", run_id))
        assert [t.to for t in history] == ["running", "timeout"], run_id
        assert history[1].at == int(start * 1000) + 1000 + (n % 30) * 100
    assert runtime.store.stats()["deadlines"] == len(runs)


def test_deadlines_command_lists_what_is_next(redis_url: str, runtime: Runtime) -> None:
    start = _now(runtime)
    publish(
        runtime,
        {"id": "a", "type": "run.started", "run_id": "r_list", "occurred_at": start, "data": {"timeout_seconds": 600}},
        {
            "id": "b",
            "type": "step.created",
            "run_id": "r_list",
            "step_id": "s1",
            "occurred_at": start,
            "data": {"expires_at": start + 60},
        },
    )
    assert runstate(["worker", "--burst"], redis_url).returncode == 0
    listed = [orjson.loads(line) for line in runstate(["deadlines", "--limit", "5"], redis_url).stdout.splitlines()]
    assert [(d["object"], d["id"], d["kind"]) for d in listed] == [
        ("step", "s1", "step_expiry"),
        ("run", "r_list", "run_timeout"),
    ]
    assert 50 < listed[0]["in_seconds"] <= 60
    assert 590 < listed[1]["in_seconds"] <= 600


def test_a_deadline_waits_behind_events_held_for_a_sequence_gap(runtime: Runtime) -> None:
    start = runtime.store.now_ms() / 1000 - 10
    publish(
        runtime,
        {
            "id": "a",
            "type": "run.started",
            "run_id": "r_held",
            "sequence": 1,
            "occurred_at": start,
            "data": {"timeout_seconds": 5},
        },
        {"id": "c", "type": "run.completed", "run_id": "r_held", "sequence": 3, "occurred_at": start + 1},
    )
    runtime.processor.drain(refs("r_held"))  # the deadline has passed, but seq 3 waits for seq 2
    assert runtime.store.get(ref("default", "r_held")).run.status == "running"  # type: ignore[union-attr]
    publish(
        runtime,
        {
            "id": "b",
            "type": "step.created",
            "run_id": "r_held",
            "step_id": "s",
            "sequence": 2,
            "occurred_at": start + 0.5,
        },
    )
    runtime.processor.drain(refs("r_held"))
    state = runtime.store.get(ref("default", "r_held"))
    assert state is not None
    assert (state.run.status, state.run.completed_at) == ("completed", int((start + 1) * 1000))


def test_overdue_deadlines_fire_in_the_order_of_their_instants_when_a_worker_returns(
    redis_url: str, runtime: Runtime
) -> None:
    start = _now(runtime)
    publish(
        runtime,
        {"id": "a", "type": "run.started", "run_id": "r_late", "occurred_at": start, "data": {"timeout_seconds": 2}},
        {"id": "b", "type": "step.created", "run_id": "r_late", "step_id": "s1", "occurred_at": start},
        {
            "id": "c",
            "type": "step.created",
            "run_id": "r_late",
            "step_id": "s2",
            "occurred_at": start,
            "data": {"expires_at": start + 1},
        },
    )
    runtime.processor.drain(refs("r_late"))  # the run exists; then no worker runs past both deadlines
    wait_until(lambda: _now(runtime) > start + 2.2, timeout=10, every=0.05)
    assert runstate(["worker", "--burst"], redis_url).returncode == 0
    state = runtime.store.get(ref("default", "r_late"))
    assert state is not None
    at = int(start * 1000)
    assert (state.steps["s2"].status, state.steps["s2"].expired_at) == ("expired", at + 1000)  # its own instant
    assert (state.steps["s1"].status, state.steps["s1"].expired_at) == ("expired", at + 2000)  # the run's cascade
    fired = [
        (t.id, t.to, t.at, t.origin) for t in runtime.store.history(ref("default", "r_late")) if t.origin != "event"
    ]
    assert fired == [
        ("s2", "expired", at + 1000, "deadline"),
        ("r_late", "timeout", at + 2000, "deadline"),
        ("s1", "expired", at + 2000, "cascade"),
    ]


def test_a_producer_clock_hours_ahead_cannot_time_a_run_out_early(redis_url: str, runtime: Runtime) -> None:
    start = _now(runtime)
    publish(
        runtime,
        {"id": "a", "type": "run.started", "run_id": "r_skew", "data": {"timeout_seconds": 3600}},
        {
            "id": "b",
            "type": "run.completed",
            "run_id": "r_skew",
            "occurred_at": start + 7200,
            "data": {"outputs": {"n": 1}},
        },
    )
    assert runstate(["worker", "--burst"], redis_url).returncode == 0
    state = runtime.store.get(ref("default", "r_skew"))
    assert state is not None
    assert (state.run.status, state.run.outputs) == ("completed", {"n": 1})
    assert state.run.completed_at is not None
    assert state.run.completed_at < int(start * 1000) + 60_000
    assert orjson.loads(runstate(["stats"], redis_url).stdout)["clock_skew"] == 1


def test_a_time_no_output_could_spell_with_its_deadlines_is_refused_at_publish(redis_url: str) -> None:
    late = {"id": "a", "type": "run.started", "run_id": "r_9999", "occurred_at": "9999-12-31T23:00:00Z"}
    done = runstate(["publish", "-"], redis_url, stdin=orjson.dumps(late) + b"\n")
    assert done.returncode != 0
    assert "occurred_at: must not be after 9989-12-31T23:59:59.999Z" in done.stderr.decode()
