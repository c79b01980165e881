"""`runstate publish`: JSON Lines in, valid events queued; an interruption says how far it got."""

import sys

import click
from redis import exceptions as redis_errors

from worker.cli.errors import fail, redis_problem
from worker.cli.support import account_option, runtime_from_env
from worker.intake.publisher import PublishReport
from worker.settings import ENVIRONMENT_HELP
from worker.store.durability import NotReplicated


@click.command(epilog=ENVIRONMENT_HELP)
@click.argument("files", nargs=-1, type=click.Path(exists=True, allow_dash=True, dir_okay=False))
@account_option(
    "Account of the events that name none (data.account_id) and whose run id no account holds yet; it also "
    "chooses among several accounts holding one. Default: RUNSTATE_DEFAULT_ACCOUNT."
)
def publish(files: tuple[str, ...], account: str | None) -> None:
    """Validate JSON Lines events from FILES (stdin for - or none) and enqueue the valid ones.

    An event's account is its data.account_id; else the account holding a run of its id; else
    --account. Each invalid line is reported as `line K: <reason>`; exit 1 when any line was invalid, or
    when RUNSTATE_REPLICA_ACKS replicas did not confirm them in time. Cut off by Redis, it says
    how many events were stored: publishing again is safe, since events are applied once by their ids.
    """
    publisher = runtime_from_env().publisher
    accepted = invalid = 0
    for name in files or ("-",):
        report = PublishReport()
        try:
            with click.open_file(name, "rb") as stream:
                publisher.publish_lines(stream, account=account, report=report)
        except NotReplicated as behind:
            fail(f"{name}: {behind}; publishing the same files again is safe: events are applied once, by their ids")
        except redis_errors.RedisError as error:
            stored = accepted + report.accepted
            fail(
                f"{redis_problem(error)}; {stored} events were stored before it ({name} not finished); "
                "publishing the same files again is safe: events already stored are applied once, by their ids"
            )
        prefix = "" if len(files) <= 1 else f"{name}: "
        for number, reason in report.errors:
            click.echo(f"{prefix}line {number}: {reason}", err=True)
        accepted += report.accepted
        invalid += len(report.errors)
    click.echo(f"published {accepted} events; {invalid} invalid lines", err=True)
    sys.exit(1 if invalid else 0)
