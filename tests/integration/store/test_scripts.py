"""The commit script goes by its SHA alone: no SCRIPT EXISTS round trip per pass (what redis-py
does for a script queued in a pipeline), and a server that lost its scripts still takes every
commit (they are loaded again and sent again, never applied twice)."""

from redis import Redis

from tests.support.publishing import publish, refs
from worker.runtime import Runtime
from worker.store.keys import ref


def _script_calls(redis: Redis) -> int:
    """SCRIPT's calls, its subcommands (EXISTS, LOAD) included: Redis 7 counts each apart."""
    stats = redis.info("commandstats")
    return sum(int(found["calls"]) for name, found in stats.items() if name.startswith("cmdstat_script"))


def test_a_drain_asks_redis_nothing_about_its_scripts(runtime: Runtime) -> None:
    publish(runtime, {"id": "e0", "type": "run.started", "run_id": "r_sha"})
    runtime.processor.drain(refs("r_sha"))  # the script is loaded once, by whoever runs first
    before = _script_calls(runtime.redis)
    for n in range(3):
        publish(runtime, {"id": f"c{n}", "type": "step.created", "run_id": "r_sha", "step_id": f"s{n}"})
        runtime.processor.drain(refs("r_sha"))
    assert _script_calls(runtime.redis) == before
    state = runtime.store.get(ref("default", "r_sha"))
    assert state is not None
    assert list(state.steps) == ["s0", "s1", "s2"]


def test_commits_to_a_server_that_lost_its_scripts_are_applied_once(runtime: Runtime) -> None:
    runs = [f"r_flushed_{n}" for n in range(3)]
    publish(runtime, *({"id": f"e_{r}", "type": "run.started", "run_id": r} for r in runs))
    runtime.redis.script_flush()  # as a restarted Redis has none
    report = runtime.processor.drain(refs(*runs))
    assert (report.outcomes["run.started:applied"], report.conflicts, report.failures) == (3, 0, 0)
    assert [len(runtime.store.history(ref("default", r))) for r in runs] == [1, 1, 1]
