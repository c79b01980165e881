"""What a queued job carries for each event: its JSON text, the account and the origin.

A job's argument is a JSON list of envelopes `[text, account, origin]`; the text is the
producer's line exactly as published, validated again by the worker.
"""

from dataclasses import dataclass
from typing import Any

from statemachine.status import Origin


@dataclass(frozen=True, slots=True)
class Envelope:
    text: str
    account: str | None = None  # the API token's account, when it came through the API
    origin: Origin = Origin.EVENT

    def to_json(self) -> list[Any]:
        return [self.text, self.account, self.origin.value]


def from_json(item: Any) -> Envelope:
    """An envelope from a job argument; raises ValueError naming what is wrong with it."""
    if not isinstance(item, list) or len(item) != 3:
        raise ValueError("a queued event must be [text, account, origin]")
    text, account, origin = item
    if not isinstance(text, str) or not (account is None or isinstance(account, str)):
        raise ValueError("a queued event's text must be a string and its account a string or null")
    if origin not in Origin.__members__.values():
        raise ValueError(f"a queued event's origin must be one of {', '.join(Origin)}")
    return Envelope(text, account, Origin(origin))
