"""The CLI as a user drives it (click's runner), against the test redis-server."""

from pathlib import Path

import jsonschema
import orjson
import pytest
from click.testing import CliRunner, Result

from tests.support.paths import DATA, EXAMPLE
from tests.support.processes import runstate
from worker.cli.main import main

LETTA_SCHEMA = orjson.loads((DATA / "letta-Step.resolved.schema.json").read_bytes())


@pytest.fixture
def cli(redis_url: str, monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    monkeypatch.setenv("REDIS_URL", redis_url)
    runner = CliRunner()
    assert runner.invoke(main, ["publish", str(EXAMPLE)]).exit_code == 0
    assert runner.invoke(main, ["worker", "--burst"]).exit_code == 0
    return runner


def _json(result: Result) -> object:
    assert result.exit_code == 0, result.output
    return orjson.loads(result.stdout)


def test_show_step_renders_each_step_format(cli: CliRunner) -> None:
    azure = _json(cli.invoke(main, ["show", "step", "run_billing_2", "step_lookup", "--format", "azure"]))
    assert azure["object"] == "thread.run.step"  # type: ignore[index]
    assert azure["last_error"] == {"code": "server_error", "message": "tool_error: invoice service answered 503"}  # type: ignore[index]
    letta = _json(cli.invoke(main, ["show", "step", "run_billing_2", "step_lookup", "--format", "letta"]))
    jsonschema.Draft202012Validator(LETTA_SCHEMA).validate(letta)
    assert (letta["status"], letta["error_type"]) == ("failed", "tool_error")  # type: ignore[index]
    native = _json(cli.invoke(main, ["show", "step", "run_billing_2", "step_lookup"]))
    assert native["error"] == {"code": "tool_error", "message": "invoice service answered 503"}  # type: ignore[index]


def test_show_unknown_ids_exit_one_naming_them(cli: CliRunner) -> None:
    missing_run = cli.invoke(main, ["show", "run", "run_ghost"])
    assert (missing_run.exit_code, "run_ghost" in missing_run.stderr) == (1, True)
    missing_step = cli.invoke(main, ["show", "step", "run_billing_2", "step_ghost"])
    assert (missing_step.exit_code, "step_ghost" in missing_step.stderr) == (1, True)
    assert cli.invoke(main, ["steps", "run_ghost"]).exit_code == 1
    assert cli.invoke(main, ["history", "run_ghost"]).exit_code == 1


@pytest.mark.parametrize(
    ("command", "message"),
    [
        (["show", "run", "run_ghost"], "run 'run_ghost'"),
        (["steps", "run_ghost"], "run 'run_ghost'"),
        (["history", "run_ghost"], "run 'run_ghost'"),
        (["delete", "run", "run_ghost"], "run 'run_ghost'"),
        (["webhooks", "remove", "sub_ghost"], "subscription 'sub_ghost'"),
        (["webhooks", "enable", "sub_ghost"], "subscription 'sub_ghost'"),
        (["webhooks", "replay", "dlv_ghost"], "delivery 'dlv_ghost'"),
    ],
)
def test_every_missing_id_ends_a_command_the_same_way(
    command: list[str], message: str, redis_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("REDIS_URL", redis_url)
    result = CliRunner().invoke(main, command)
    assert (result.exit_code, result.stdout, result.stderr) == (1, "", f"runstate: {message} not found\n")


def test_stats_counts_every_outcome_of_the_example(cli: CliRunner) -> None:
    stats = _json(cli.invoke(main, ["stats"]))
    assert stats == {
        "applied": 26,
        "duplicate": 2,
        "stale": 1,
        "rejected": 1,
        "late_usage": 1,
        "deadlines": 0,
        "inactivity_timeouts": 0,
        "gaps": 0,
        "clock_skew": 0,
        "invalid_events": 0,
        "poisoned_jobs": 0,
        "run": {"applied": 10, "duplicate": 1, "stale": 0, "rejected": 1},
        "step": {"applied": 16, "duplicate": 1, "stale": 1, "rejected": 0},
        "by_type": {  # the example's events by type; evt_a03 and evt_a08 come twice
            "run.started": _applied(4),
            "run.waiting": _applied(1),
            "run.resumed": _applied(1),
            "run.completed": {"applied": 2, "duplicate": 1, "stale": 0, "rejected": 1},  # evt_c05 while waiting
            "run.failed": _applied(1),
            "run.cancelled": _applied(1),
            "step.created": _applied(9),
            "step.completed": {"applied": 6, "duplicate": 1, "stale": 1, "rejected": 0},  # evt_d05 after the cancel
            "step.failed": _applied(1),
        },
    }


def _applied(n: int) -> dict[str, int]:
    return {"applied": n, "duplicate": 0, "stale": 0, "rejected": 0}


def test_rejected_prints_the_illegal_event_with_its_reason(cli: CliRunner) -> None:
    result = cli.invoke(main, ["rejected"])
    records = [orjson.loads(line) for line in result.stdout.splitlines()]
    assert [(r["reason"], r["detail"], r["event"]["id"], r["event"]["type"]) for r in records] == [
        ("illegal_transition", "run.completed in status waiting", "evt_c05", "run.completed")
    ]
    assert set(records[0]) == {"event", "reason", "detail", "at"}


def test_runs_prints_refactor_lines_filtered_by_status(cli: CliRunner) -> None:
    result = cli.invoke(main, ["runs", "--status", "failed", "--format", "refactor"])
    runs = [orjson.loads(line) for line in result.stdout.splitlines()]
    assert [(r["id"], r["status"], r["result"]["error"]) for r in runs] == [
        ("run_billing_2", "failed", {"code": "INTERNAL_ERROR", "message": "invoice lookup failed"})
    ]


def test_replay_applies_what_follows_a_sequence_gap_in_the_file(tmp_path: Path, redis_url: str) -> None:
    path = tmp_path / "gap.jsonl"
    path.write_text(
        '{"id": "a", "type": "run.started", "run_id": "r_gap", "sequence": 1}\n'
        '{"id": "c", "type": "run.completed", "run_id": "r_gap", "sequence": 3}\n'
    )
    replayed = runstate(["replay", str(path), "--json"], redis_url)
    assert replayed.returncode == 0, replayed.stderr
    assert orjson.loads(replayed.stdout)["status"] == "completed"
