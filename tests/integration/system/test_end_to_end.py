"""Events published with the real CLI, applied by real RQ workers, read back through the store."""

import orjson
import pytest

from tests.support.invariants import history_problems, stamp_problems
from tests.support.paths import EXAMPLE
from tests.support.processes import runstate
from worker import reads
from worker.runtime import Runtime
from worker.store.keys import ref

EXPECTED_STATUS = {
    "run_research_1": "completed",
    "run_billing_2": "failed",
    "run_onboard_3": "completed",
    "run_draft_4": "cancelled",
}


@pytest.mark.parametrize("worker_flags", [[], ["--fork"]], ids=["SimpleWorker", "forking Worker"])
def test_example_log_ends_every_run_exactly_right(worker_flags: list[str], redis_url: str, runtime: Runtime) -> None:
    published = runstate(["publish", str(EXAMPLE)], redis_url)
    assert published.returncode == 0, published.stderr
    worked = runstate(["worker", "--burst", *worker_flags], redis_url)
    assert worked.returncode == 0, worked.stderr

    store = runtime.store
    assert {run_id: store.get(ref("acct_acme", run_id)).run.status for run_id in EXPECTED_STATUS} == EXPECTED_STATUS  # type: ignore[union-attr]
    for run_id in EXPECTED_STATUS:
        state = store.get(ref("acct_acme", run_id))
        assert state is not None
        assert stamp_problems(state) == []
        assert history_problems(state, store.history(ref("acct_acme", run_id))) == []
    draft = store.get(ref("acct_acme", "run_draft_4"))
    assert draft is not None
    assert {s.id: s.status.value for s in draft.steps.values()} == {
        "step_outline": "cancelled",
        "step_research": "cancelled",
    }
    stats = reads.stats(store)
    assert (stats["run"]["duplicate"], stats["step"]["duplicate"]) == (1, 1)
    assert stats["run"]["rejected"] == 1
    assert stats["late_usage"] == 1
    rejected = list(store.rejected())
    assert [(r["reason"], r["detail"], r["event"]["id"]) for r in rejected] == [
        ("illegal_transition", "run.completed in status waiting", "evt_c05")
    ]


def test_publish_reports_each_invalid_line_and_enqueues_the_rest(redis_url: str, runtime: Runtime) -> None:
    lines = [
        b'{"id": "e1", "type": "run.started", "run_id": "r1"}',
        b"",
        b'{"id": "e2", "type": "run.finished", "run_id": "r1"}',
        b'{"id": "e3", "type": "run.completed", "run_id": "r 1"}',
        b'{"id": "e4", "type": "run.completed", "run_id": "r1"}',
    ]
    published = runstate(["publish", "-"], redis_url, stdin=b"\n".join(lines) + b"\n")
    assert published.returncode == 1
    errors = [line for line in published.stderr.decode().splitlines() if line.startswith("line ")]
    assert [e.split(":")[0] for e in errors] == ["line 3", "line 4"]
    assert "'run.finished' is not an event type" in errors[0]
    assert "run_id" in errors[1]
    assert "' '" in errors[1]
    assert runstate(["worker", "--burst"], redis_url).returncode == 0
    state = runtime.store.get(ref("default", "r1"))
    assert state is not None
    assert state.run.status == "completed"


def test_read_commands_print_what_the_store_holds(redis_url: str, runtime: Runtime) -> None:
    runstate(["publish", str(EXAMPLE)], redis_url)
    runstate(["worker", "--burst"], redis_url)
    shown = orjson.loads(runstate(["show", "run", "run_research_1", "--format", "refactor"], redis_url).stdout)
    assert shown["status"] == "completed"
    assert shown["total_input_tokens"] == 1200 + 800 + 2100
    steps = orjson.loads(runstate(["steps", "run_research_1", "--format", "azure"], redis_url).stdout)
    assert [s["id"] for s in steps] == ["step_plan", "step_search", "step_answer"]
    history = runstate(["history", "run_research_1"], redis_url).stdout.decode().splitlines()
    assert [orjson.loads(line)["n"] for line in history] == list(range(1, 9))
    listed = runstate(["runs", "--status", "completed"], redis_url).stdout.decode().splitlines()
    assert sorted(orjson.loads(line)["id"] for line in listed) == ["run_onboard_3", "run_research_1"]
    missing = runstate(["show", "run", "run_nobody"], redis_url)
    assert missing.returncode == 1
    assert "run_nobody" in missing.stderr.decode()
