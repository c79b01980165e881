"""Costs from pydantic's `genai-prices` table, for steps that reported usage and a model but no cost.

The table ships inside the package: a lookup does no I/O (its auto-update is never started
here), so the drain may price in line. Dated model names (`gpt-4o-mini-2024-07-18`) resolve
to their model; a model the table does not know costs None, never 0.
"""

from datetime import UTC, datetime
from functools import lru_cache
from importlib import metadata
from types import ModuleType

from statemachine.events import Usage
from statemachine.pricing import Priced


@lru_cache(maxsize=1)
def _source() -> str:
    """The table's name on a priced step, read at the first price too: reading an installed
    package's version parses its metadata, which a worker start need not pay."""
    return f"genai-prices {metadata.version('genai-prices')}"


@lru_cache(maxsize=1)
def _table() -> ModuleType:
    """genai-prices, imported at the first price asked for: loading its table takes ~0.3 s, which
    a worker whose events all report their costs never pays."""
    import genai_prices

    return genai_prices


class GenaiPrices:
    """A `statemachine.pricing.Pricer` over genai-prices' bundled table."""

    @staticmethod
    def version() -> str:
        return metadata.version("genai-prices")

    def price(self, model: str, provider: str | None, usage: Usage, at: int) -> Priced | None:
        if not _known(model, provider):
            return None
        counts = _table().Usage(
            input_tokens=usage.prompt_tokens,  # genai-prices counts cache reads within input, as OpenAI does
            cache_read_tokens=usage.cached_tokens,
            output_tokens=usage.completion_tokens,  # reasoning is within completion, priced as output
        )
        when = datetime.fromtimestamp(at / 1000, UTC)  # prices change over time: the step's own
        calculated = _table().calc_price(
            counts, model, provider_id=_provider(model, provider), genai_request_timestamp=when
        )
        return Priced(calculated.total_price, _source())


@lru_cache(maxsize=1024)
def _provider(model: str, provider: str | None) -> str | None:
    """The producer's provider when the table knows it with this model; else the table's own guess
    (OTel's `gen_ai.system` spells some providers its own way, e.g. `az.ai.inference`)."""
    if provider is None:
        return None
    try:
        _table().calc_price(_table().Usage(), model, provider_id=provider)
    except LookupError:
        return None
    return provider


@lru_cache(maxsize=1024)
def _known(model: str, provider: str | None) -> bool:
    try:
        _table().calc_price(_table().Usage(), model, provider_id=_provider(model, provider))
    except LookupError:
        return False
    return True
