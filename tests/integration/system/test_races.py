"""Many workers, one run: compare-and-set loses no update; a killed worker leaves no partial state."""

import random
import signal
import subprocess
import sys
import time

import orjson

from tests.support.invariants import history_problems, stamp_problems
from tests.support.processes import cli_env, runstate, start_worker
from tests.support.publishing import refs
from worker.runtime import Runtime
from worker.store.keys import ref


def _step_events(run_id: str, steps: int) -> bytes:
    lines = []
    for n in range(steps):
        usage = {"prompt_tokens": n + 1, "completion_tokens": 1}
        lines.append({"id": f"c{n}", "type": "step.created", "run_id": run_id, "step_id": f"s{n}"})
        lines.append(
            {
                "id": f"d{n}",
                "type": "step.completed",
                "run_id": run_id,
                "step_id": f"s{n}",
                "data": {"usage": usage, "cost_usd": 0.001},
            }
        )
    return b"".join(orjson.dumps(line) + b"\n" for line in lines)


def test_two_workers_racing_on_one_run_lose_no_update(redis_url: str, runtime: Runtime) -> None:
    steps = 150
    # One event per job, so both workers hold jobs of the same run at the same time.
    published = runstate(["publish", "-"], redis_url, stdin=_step_events("r_race", steps), RUNSTATE_BATCH_SIZE="1")
    assert published.returncode == 0, published.stderr
    workers = [start_worker(redis_url, "--burst") for _ in range(2)]
    for worker in workers:
        _, errors = worker.communicate(timeout=240)
        assert worker.returncode == 0, errors.decode()[-2000:]

    state = runtime.store.get(ref("default", "r_race"))
    assert state is not None
    assert len(state.steps) == steps
    assert sum(s.usage.prompt_tokens for s in state.steps.values() if s.usage) == steps * (steps + 1) // 2
    assert all(s.status == "completed" for s in state.steps.values())
    assert history_problems(state, runtime.store.history(ref("default", "r_race"))) == []
    # Per-run order: no completion ever overtook its creation, so none of them was stale.
    assert runtime.store.stats() == {"step.created:applied": steps, "step.completed:applied": steps}
    assert runtime.redis.scard("runstate:seen:{default/r_race}") == 2 * steps


def test_worker_killed_at_random_instants_leaves_every_run_whole(redis_url: str, runtime: Runtime) -> None:
    runs = 40
    body = b"".join(_step_events(f"r_kill_{n}", 25) for n in range(runs))
    assert runstate(["publish", "-"], redis_url, stdin=body, RUNSTATE_BATCH_SIZE="20").returncode == 0
    rng = random.Random(7)
    for _ in range(6):
        worker = start_worker(redis_url, "--burst")
        time.sleep(rng.uniform(0.3, 1.2))
        worker.send_signal(signal.SIGKILL)
        worker.communicate(timeout=30)
        for n in range(runs):
            state = runtime.store.get(ref("default", f"r_kill_{n}"))
            if state is None:
                continue
            history = runtime.store.history(ref("default", f"r_kill_{n}"))
            assert stamp_problems(state) == []
            assert history_problems(state, history) == []
            # every event adds one record; the run's implicit creation adds one more
            assert runtime.redis.scard(f"runstate:seen:{{default/r_kill_{n}}}") == len(history) - 1


def test_process_killed_between_load_and_commit_writes_nothing_and_loses_nothing(
    redis_url: str, runtime: Runtime
) -> None:
    runtime.publisher.publish_lines(['{"id": "e1", "type": "run.completed", "run_id": "r_dead"}'])
    script = (
        "import os, signal\n"
        "from worker.runtime import Runtime\n"
        "from worker.settings import Settings\n"
        "from worker.store.runs import Store\n"
        "Store.commit = lambda self, commits: os.kill(os.getpid(), signal.SIGKILL)\n"
        "from worker.store.keys import ref\n"
        "Runtime.connect(Settings()).processor.drain([ref('default', 'r_dead')])\n"
    )
    done = subprocess.run([sys.executable, "-c", script], env=cli_env(redis_url), capture_output=True, timeout=60)
    assert done.returncode == -signal.SIGKILL, done.stderr
    assert runtime.store.get(ref("default", "r_dead")) is None
    assert runtime.store.history(ref("default", "r_dead")) == []
    assert runtime.redis.llen("runstate:inbox:{default/r_dead}") == 1

    runtime.processor.drain(refs("r_dead"))

    state = runtime.store.get(ref("default", "r_dead"))
    assert state is not None
    assert state.run.status == "completed"
    assert runtime.redis.llen("runstate:inbox:{default/r_dead}") == 0
