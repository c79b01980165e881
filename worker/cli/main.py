"""The `runstate` command: each subcommand parses, builds settings, and calls one function."""

import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from statemachine.dialects import RUN_FORMATS, STEP_FORMATS, Format
from statemachine.status import RunStatus
from worker import reads
from worker.cli.errors import Runstate
from worker.cli.publish import publish
from worker.cli.support import account_option, print_json, print_lines, runtime_from_env
from worker.cli.webhooks import webhooks
from worker.settings import ENVIRONMENT_HELP

F = TypeVar("F", bound=Callable[..., Any])


def _format_option(choices: tuple[Format, ...]) -> Callable[[F], F]:
    return click.option(
        "--format",
        "fmt",
        type=click.Choice([c.value for c in choices]),
        default=Format.NATIVE.value,
        show_default=True,
        help="Output shape.",
    )


_WHOSE = "The account whose run RUN_ID is (needed only when several accounts have a run of that id)."


@click.group(cls=Runstate, epilog=ENVIRONMENT_HELP)
def main() -> None:
    """runstate keeps the lifecycle of AI-agent runs and their steps correct."""


@main.command(epilog=ENVIRONMENT_HELP)
@click.option("--burst", is_flag=True, help="Exit when no work is left.")
@click.option("--fork", is_flag=True, help="Fork a work horse per job (RQ's Worker) instead of working in-process.")
def worker(burst: bool, fork: bool) -> None:
    """Run a worker on runstate's queue: apply queued events to runs and steps."""
    from worker.processes import run_worker, tune_garbage_collector

    tune_garbage_collector()
    run_worker(runtime_from_env(log_level="info"), burst=burst, fork=fork)


@main.group(epilog=ENVIRONMENT_HELP)
def show() -> None:
    """Show one run or one step as a JSON object."""


@show.command("run", epilog=ENVIRONMENT_HELP)
@click.argument("run_id")
@_format_option(RUN_FORMATS)
@account_option(_WHOSE)
def show_run(run_id: str, fmt: str, account: str | None) -> None:
    """Show the run RUN_ID."""
    store = runtime_from_env().store
    print_json(reads.run(store, reads.resolve(store, run_id, account), Format(fmt)), pretty=True)


@show.command("step", epilog=ENVIRONMENT_HELP)
@click.argument("run_id")
@click.argument("step_id")
@_format_option(STEP_FORMATS)
@account_option(_WHOSE)
def show_step(run_id: str, step_id: str, fmt: str, account: str | None) -> None:
    """Show the step STEP_ID of the run RUN_ID."""
    store = runtime_from_env().store
    print_json(reads.step(store, reads.resolve(store, run_id, account), step_id, Format(fmt)), pretty=True)


@main.command(epilog=ENVIRONMENT_HELP)
@click.argument("run_id")
@_format_option(STEP_FORMATS)
@account_option(_WHOSE)
def steps(run_id: str, fmt: str, account: str | None) -> None:
    """The steps of RUN_ID as a JSON array, in creation order."""
    store = runtime_from_env().store
    print_json(reads.steps(store, reads.resolve(store, run_id, account), Format(fmt)))


@main.command(epilog=ENVIRONMENT_HELP)
@click.option("--status", type=click.Choice([s.value for s in RunStatus]))
@_format_option(RUN_FORMATS)
@account_option("Only this account's runs (default: every account's).")
def runs(status: str | None, fmt: str, account: str | None) -> None:
    """Every stored run as JSON Lines, oldest first."""
    print_lines(reads.runs(runtime_from_env().store, status, Format(fmt), account))


@main.command(epilog=ENVIRONMENT_HELP)
@click.argument("run_id")
@account_option(_WHOSE)
def history(run_id: str, account: str | None) -> None:
    """The transitions of RUN_ID as JSON Lines, in order."""
    store = runtime_from_env().store
    print_lines(reads.history(store, reads.resolve(store, run_id, account)))


@main.group(epilog=ENVIRONMENT_HELP)
def delete() -> None:
    """Delete a run for good."""


@delete.command("run", epilog=ENVIRONMENT_HELP)
@click.argument("run_id")
@account_option(_WHOSE)
def delete_run(run_id: str, account: str | None) -> None:
    """Delete the run RUN_ID: its steps, history and queued events; its tombstone keeps late events stale."""
    from worker.store.deletion import Deleter

    runtime = runtime_from_env()
    run = reads.resolve(runtime.store, run_id, account)
    if not Deleter(runtime.redis, runtime.settings.retention).delete(run):
        raise reads.missing(runtime.store, run)


@main.command(epilog=ENVIRONMENT_HELP)
def rejected() -> None:
    """Every rejected event as JSON Lines, with its reason."""
    print_lines(runtime_from_env().store.rejected())


@main.command(epilog=ENVIRONMENT_HELP)
@click.option("--limit", default=20, show_default=True, type=click.IntRange(1, 10_000), help="How many to list.")
def deadlines(limit: int) -> None:
    """Upcoming deadlines of open runs and steps as JSON Lines, soonest first."""
    print_lines(reads.deadlines(runtime_from_env().store, limit))


@main.command(epilog=ENVIRONMENT_HELP)
def stats() -> None:
    """Outcome counters as one JSON object."""
    print_json(reads.stats(runtime_from_env().store), pretty=True)


@main.command(epilog=ENVIRONMENT_HELP)
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--json", "as_json", is_flag=True, help="Print the runs as JSON Lines instead of a table.")
def replay(file: Path, as_json: bool) -> None:
    """Publish FILE and process it in this process, then summarize its runs.

    With no REDIS_URL this runs on an embedded in-memory Redis: nothing to install.
    """
    from worker.cli.replay import json_lines, replay, table

    runtime = runtime_from_env(embedded_when_unset=True)
    result = replay(runtime, file)
    for number, reason in result.published.errors:
        click.echo(f"line {number}: {reason}", err=True)
    if as_json:
        sys.stdout.buffer.write(json_lines(result.runs))
    else:
        click.echo(table(result.runs))
    sys.exit(1 if result.published.errors else 0)


_PEM = click.Path(exists=True, dir_okay=False, path_type=Path)


@main.command(epilog=ENVIRONMENT_HELP)
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", type=int, envvar="PORT", default=8000, show_default=True, help="Default: $PORT, else 8000.")
@click.option("--ssl-certfile", type=_PEM, envvar="RUNSTATE_SSL_CERTFILE", help="PEM certificate: serve https.")
@click.option("--ssl-keyfile", type=_PEM, envvar="RUNSTATE_SSL_KEYFILE", help="The certificate's PEM private key.")
def serve(host: str, port: int, ssl_certfile: Path | None, ssl_keyfile: Path | None) -> None:
    """Serve the HTTP API (FastAPI on uvicorn), over https given a certificate and its key."""
    import structlog
    import uvicorn

    from worker.api.app import create_app
    from worker.api.guard import HEAD_CAP
    from worker.api.protocol import with_head_deadline

    if (ssl_certfile is None) != (ssl_keyfile is None):
        raise click.UsageError("--ssl-certfile and --ssl-keyfile go together: give both, or neither for plain http")
    runtime = runtime_from_env(log_level="info")
    app = create_app(runtime)  # a malformed token entry stops it here
    if not app.state.tokens:
        structlog.get_logger("runstate.api").warning(
            "serve.no_tokens", hint="set RUNSTATE_API_TOKENS or RUNSTATE_API_TOKENS_FILE: every /v1/ route answers 401"
        )
    uvicorn.run(
        app,
        host=host,
        port=port,
        log_config=None,
        ssl_certfile=ssl_certfile,
        ssl_keyfile=ssl_keyfile,
        http=with_head_deadline(runtime.settings.api_read_timeout),  # h11's, with a head deadline
        h11_max_incomplete_event_size=HEAD_CAP,
    )


main.add_command(publish)
main.add_command(webhooks)
