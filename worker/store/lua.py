"""The Lua scripts, loaded from `lua/` in one place, and what their replies mean."""

from collections.abc import Sequence
from functools import cache
from importlib import resources
from typing import Any

from redis import Redis
from redis.commands.core import Script
from redis.exceptions import NoScriptError

CONFLICT = -1  # a compare-and-set script's reply when the run's version moved since it was read


@cache
def source(name: str) -> str:
    return resources.files("worker.store").joinpath(f"lua/{name}.lua").read_text()


def register(redis: Redis, name: str) -> Script:
    """`lua/<name>.lua` as a script on this connection (sent by SHA, loaded once per server)."""
    return redis.register_script(source(name))


def run_all(redis: Redis, script: Script, calls: Sequence[tuple[Sequence[Any], Sequence[Any]]]) -> list[Any]:
    """`script` once per (keys, args) of `calls`, in one pipeline; the replies in order. Sent by
    SHA alone: a script queued in a redis-py pipeline first asks Redis whether it exists, a
    round trip more per pipeline. A server that lost its scripts (restarted, flushed) answers
    NOSCRIPT without running them: the script is loaded and those calls sent again. Any other
    error is raised, the first one, as a pipeline raises it."""
    replies = _evalsha(redis, script, calls)
    missing = [i for i, reply in enumerate(replies) if isinstance(reply, NoScriptError)]
    if missing:
        redis.script_load(script.script)
        for i, reply in zip(missing, _evalsha(redis, script, [calls[i] for i in missing]), strict=True):
            replies[i] = reply
    for reply in replies:
        if isinstance(reply, Exception):
            raise reply
    return replies


def _evalsha(redis: Redis, script: Script, calls: Sequence[tuple[Sequence[Any], Sequence[Any]]]) -> list[Any]:
    pipe = redis.pipeline(transaction=False)
    for keys, args in calls:
        pipe.evalsha(script.sha, len(keys), *keys, *args)
    return list(pipe.execute(raise_on_error=False))
