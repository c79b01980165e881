"""One line for every user mistake: what is wrong and how to fix it, never a traceback.

Exit 2 for usage (a bad option or argument, a missing file, a bad environment variable: what
the user typed or set), 1 for a failure (Redis unreachable or refusing, an interrupted publish).
Lines start `runstate:` and name the variable: `REDIS_URL=redis://localhost:1/0: connection
refused; ...`. A password in REDIS_URL is shown as `***`.
"""

import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, NoReturn
from urllib.parse import urlsplit, urlunsplit

import click
from pydantic import ValidationError
from redis import exceptions as redis_errors

from worker.cli.support import Commands
from worker.settings import DEFAULT_REDIS_URL, BadSetting, Settings
from worker.store.outage import reason

USAGE, FAILURE = 2, 1
SEE_HELP = "runstate --help lists the environment variables"


def fail(message: str, code: int = FAILURE) -> NoReturn:
    click.echo(f"runstate: {message}", err=True)
    sys.exit(code)


class Runstate(Commands):
    """The `runstate` group: its commands' errors become one line (see the module's docstring), a
    missing id among them (`Commands`)."""

    def main(self, *args: Any, **kwargs: Any) -> NoReturn:
        kwargs["standalone_mode"] = False  # click's errors come here instead of printing usage
        with one_line():
            code = super().main(*args, **kwargs)
        sys.exit(code if isinstance(code, int) else 0)


@contextmanager
def one_line() -> Iterator[None]:
    try:
        yield
    except click.exceptions.NoArgsIsHelpError as error:  # `runstate show` alone: its help, as click prints it
        click.echo(error.format_message(), err=True)
        sys.exit(USAGE)
    except click.UsageError as error:  # includes a missing file named as an argument
        where = error.ctx.command_path if error.ctx is not None else "runstate"
        fail(f"{error.format_message()} (see {where} --help)", USAGE)
    except click.ClickException as error:
        fail(error.format_message(), error.exit_code)
    except click.Abort:
        fail("aborted")
    except ValidationError as error:  # Settings() from the environment
        fail(f"{_setting_problems(error)} ({SEE_HELP})", USAGE)
    except BadSetting as error:
        fail(f"{error} ({SEE_HELP})", USAGE)
    except redis_errors.RedisError as error:
        fail(redis_problem(error))
    except KeyboardInterrupt:
        fail("interrupted", 130)


def redis_problem(error: redis_errors.RedisError) -> str:
    """`REDIS_URL=redis://localhost:1/0: Redis is unreachable (Error 111 ...); start it or set REDIS_URL`."""
    url = redacted(os.environ.get("REDIS_URL") or DEFAULT_REDIS_URL)
    why = reason(error) or "Redis answered with an error"
    hint = "start Redis or point REDIS_URL at it" if why == "Redis is unreachable" else "retry once Redis is fixed"
    return f"REDIS_URL={url}: {why} ({type(error).__name__}: {error}); {hint}"


def redacted(url: str) -> str:
    parts = urlsplit(url)
    if parts.password is None:
        return url
    user = f"{parts.username}:***@" if parts.username else ":***@"
    return urlunsplit(parts._replace(netloc=user + parts.netloc.rsplit("@", 1)[1]))


_ALIASES = {f.validation_alias for f in Settings.model_fields.values() if isinstance(f.validation_alias, str)}


def _setting_problems(error: ValidationError) -> str:
    """`RUNSTATE_LOG_LEVEL='verbose': must be one of debug, info, warning, error`, for each bad variable."""
    problems = []
    for problem in error.errors(include_url=False):
        name = str(problem["loc"][0]) if problem["loc"] else ""
        variable = name if name in _ALIASES else f"RUNSTATE_{name.upper()}"  # REDIS_URL: no prefix
        value = "***" if name == "api_tokens" else problem["input"]
        message = str(problem["msg"]).removeprefix("Value error, ")
        problems.append(f"{variable}={value!r}: {message}")
    return "; ".join(problems)
