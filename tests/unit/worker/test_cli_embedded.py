"""The CLI's own behaviour that needs no Redis server: help texts and the embedded replay."""

import orjson
import pytest
from click.testing import CliRunner

from tests.support.paths import EXAMPLE
from worker.cli.main import main

COMMANDS = [
    ["publish"],
    ["worker"],
    ["show", "run"],
    ["show", "step"],
    ["steps"],
    ["runs"],
    ["history"],
    ["rejected"],
    ["stats"],
    ["deadlines"],
    ["replay"],
    ["serve"],
    ["webhooks", "add"],
    ["webhooks", "list"],
    ["webhooks", "remove"],
    ["webhooks", "dead"],
    ["webhooks", "replay"],
    ["webhooks", "deliver"],
]


@pytest.mark.parametrize("command", COMMANDS, ids=" ".join)
def test_every_command_help_names_the_environment_it_reads(command: list[str]) -> None:
    result = CliRunner().invoke(main, [*command, "--help"])
    assert result.exit_code == 0
    assert "REDIS_URL" in result.output
    assert "RUNSTATE_DEFAULT_ACCOUNT" in result.output


@pytest.fixture
def no_redis_url(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("REDIS_URL", raising=False)


@pytest.mark.usefixtures("no_redis_url")
def test_replay_without_redis_url_runs_embedded_and_prints_a_table() -> None:
    result = CliRunner().invoke(main, ["replay", str(EXAMPLE)])
    assert result.exit_code == 0, result.output
    rows = {line.split()[0]: line.split()[1:] for line in result.stdout.splitlines()[2:]}
    assert rows["run_research_1"][:4] == ["completed", "3", "4760", "$0.011721"]
    assert rows["run_billing_2"][:2] == ["failed", "2"]
    assert rows["run_onboard_3"][:2] == ["completed", "2"]
    assert rows["run_draft_4"][:4] == ["cancelled", "2", "910", "$0.00385"]


@pytest.mark.usefixtures("no_redis_url")
def test_replay_json_prints_one_native_run_per_line() -> None:
    result = CliRunner().invoke(main, ["replay", str(EXAMPLE), "--json"])
    assert result.exit_code == 0, result.output
    runs = [orjson.loads(line) for line in result.stdout.splitlines()]
    assert [(r["id"], r["status"], r["step_count"]) for r in runs] == [
        ("run_research_1", "completed", 3),
        ("run_billing_2", "failed", 2),
        ("run_onboard_3", "completed", 2),
        ("run_draft_4", "cancelled", 2),
    ]
    assert runs[0]["usage"]["prompt_tokens"] == 4100
    assert runs[0]["cost_usd"] == 0.011721


@pytest.mark.usefixtures("no_redis_url")
def test_replay_reports_invalid_lines_and_exits_one(tmp_path: object) -> None:
    from pathlib import Path

    path = Path(str(tmp_path)) / "bad.jsonl"
    path.write_text('{"id": "e1", "type": "run.started", "run_id": "r1"}\n{"id": "e2"}\n')
    result = CliRunner().invoke(main, ["replay", str(path)])
    assert result.exit_code == 1
    assert "line 2: " in result.stderr
    assert "r1" in result.stdout
