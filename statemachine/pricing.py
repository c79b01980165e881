"""What a step costs when its producer reported usage and a model but no cost.

The domain does not know prices: the worker passes a `Pricer` in through the `Policy` (a
price table is third-party data), and `apply_event` asks it only for steps that need one.
"""

from decimal import Decimal
from typing import NamedTuple, Protocol

from statemachine.events import Usage

REPORTED = "reported"  # the cost the producer sent


class Priced(NamedTuple):
    cost_usd: Decimal  # exact
    source: str  # where the price came from, e.g. "genai-prices 0.2.5"


class Pricer(Protocol):
    def price(self, model: str, provider: str | None, usage: Usage, at: int) -> Priced | None:
        """The cost of `usage` on `model` at `at` (ms since the epoch); None when the model is unknown."""
        ...
