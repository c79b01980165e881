"""What an inbox entry carries for each event: its JSON text, the account, the origin and
when it was published.

An inbox entry is a JSON list `[text, account, origin, published_at]`; the text is the
producer's line exactly as published, validated again by the worker.
"""

import time
from dataclasses import dataclass
from typing import Any

from statemachine.status import Origin


def time_ms() -> int:
    """This host's clock in milliseconds: when an event was published, for the latency metric."""
    return time.time_ns() // 1_000_000


@dataclass(frozen=True, slots=True)
class Envelope:
    text: str
    account: str | None = None  # the run's account, decided at publish (None only in a forged entry)
    origin: Origin = Origin.EVENT
    published_at: int = 0  # ms, the publisher's clock (0: unknown)

    def to_json(self, published_at: int | None = None) -> list[Any]:
        at = self.published_at if published_at is None else published_at
        return [self.text, self.account, self.origin.value, at]


_ORIGINS = {origin.value: origin for origin in Origin}


def from_json(item: Any) -> Envelope:
    """An envelope from an inbox entry; raises ValueError naming what is wrong with it."""
    if type(item) is not list or len(item) != 4:
        raise ValueError("a queued event must be [text, account, origin, published_at]")
    text, account, origin, published_at = item
    if type(text) is not str or not (account is None or type(account) is str):
        raise ValueError("a queued event's text must be a string and its account a string or null")
    found = _ORIGINS.get(origin) if type(origin) is str else None
    if found is None:
        raise ValueError(f"a queued event's origin must be one of {', '.join(Origin)}")
    if type(published_at) is not int or published_at < 0:
        raise ValueError("a queued event's published_at must be milliseconds (an integer ≥ 0)")
    return Envelope(text, account, found, published_at)
