"""The Lua scripts, loaded from `lua/` in one place, and what their replies mean."""

from functools import cache
from importlib import resources

from redis import Redis
from redis.commands.core import Script

CONFLICT = -1  # a compare-and-set script's reply when the run's version moved since it was read


@cache
def source(name: str) -> str:
    return resources.files("worker.store").joinpath(f"lua/{name}.lua").read_text()


def register(redis: Redis, name: str) -> Script:
    """`lua/<name>.lua` as a script on this connection (sent by SHA, loaded once per server)."""
    return redis.register_script(source(name))
