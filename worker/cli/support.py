"""What every `runstate` subcommand shares: settings and Redis from the environment, JSON output,
and how a command ends when an id it was given names nothing stored."""

import sys
from collections.abc import Iterable
from typing import Any

import click
import orjson

from worker import logs
from worker.reads import NotFound
from worker.runtime import Runtime
from worker.settings import BadSetting, Settings


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


class Commands(click.Group):
    """A command group whose subcommands raise `NotFound` for an id that names nothing stored
    (a run, step, subscription or delivery); every one of them then ends the same way:
    `runstate: run 'x' not found` on stderr, exit status 1."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except NotFound as missing:
            click.echo(f"runstate: {missing}", err=True)
            ctx.exit(1)
