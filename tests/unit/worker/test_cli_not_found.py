"""One way for every `runstate` subcommand to end when an id names nothing stored."""

import click
from click.testing import CliRunner

from worker.cli.support import Commands
from worker.reads import NotFound


@click.group(cls=Commands)
def top() -> None:
    pass


@top.group()
def show() -> None:
    pass


@show.command()
@click.argument("run_id")
def run(run_id: str) -> None:
    raise NotFound(f"run {run_id!r}")


def test_a_missing_id_in_a_nested_subcommand_exits_one_naming_it_on_stderr() -> None:
    result = CliRunner().invoke(top, ["show", "run", "run_ghost"])
    assert (result.exit_code, result.stdout, result.stderr) == (1, "", "runstate: run 'run_ghost' not found\n")
