"""Redis replies as Python values, in one place."""

from typing import Any


def as_text(value: object) -> str:
    """A Redis reply as text (replies are bytes; fakeredis and some commands give str)."""
    return value.decode() if isinstance(value, bytes) else str(value)


def ms(time_reply: Any) -> int:
    """Redis `TIME` (seconds, microseconds) as whole milliseconds."""
    seconds, micros = time_reply
    return int(seconds) * 1000 + int(micros) // 1000
