"""What every `runstate` subcommand shares: settings and Redis from the environment, JSON output,
and how a command ends when an id it was given names nothing stored."""

import re
import sys
from collections.abc import Callable, Iterable
from typing import Any, TypeVar

import click
import orjson

from statemachine.bounds import KEY_ID_PATTERN, key_id_problem
from worker import logs
from worker.reads import NotFound
from worker.runtime import Runtime
from worker.settings import BadSetting, Settings
from worker.store.owners import AmbiguousRun

F = TypeVar("F", bound=Callable[..., Any])


def settings_from_env() -> Settings:
    return Settings()


def runtime_from_env(embedded_when_unset: bool = False, log_level: str = "warning") -> Runtime:
    settings = settings_from_env()
    logs.configure(settings.log_level or log_level)
    try:
        return Runtime.connect(settings, embedded_when_unset=embedded_when_unset)
    except ValueError as error:  # redis-py's words for a URL it cannot parse
        raise BadSetting(f"REDIS_URL={settings.redis_url}", str(error)) from None


def print_json(value: Any, *, pretty: bool = False) -> None:
    option = orjson.OPT_INDENT_2 if pretty else 0
    sys.stdout.buffer.write(orjson.dumps(value, option=option) + b"\n")
    sys.stdout.flush()


def print_lines(values: Iterable[Any]) -> None:
    for value in values:
        sys.stdout.buffer.write(orjson.dumps(value) + b"\n")
    sys.stdout.flush()


def _account_id(_ctx: click.Context, _param: click.Parameter, value: str | None) -> str | None:
    if value is not None and not re.fullmatch(KEY_ID_PATTERN, value):
        raise click.BadParameter(key_id_problem(value))
    return value


def account_option(what: str) -> Callable[[F], F]:
    """`--account ACCOUNT`, checked as an account id (it is part of its runs' keys)."""
    return click.option("--account", help=what, metavar="ACCOUNT", callback=_account_id)


class Commands(click.Group):
    """A command group whose subcommands raise `NotFound` for an id that names nothing stored
    (a run, step, subscription or delivery), or `AmbiguousRun` for a run id several accounts
    hold; every one of them then ends the same way: `runstate: run 'x' not found` on stderr,
    exit status 1."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except (NotFound, AmbiguousRun) as missing:
            click.echo(f"runstate: {missing}", err=True)
            ctx.exit(1)
