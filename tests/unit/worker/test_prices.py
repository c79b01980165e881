"""Costs priced by genai-prices when a producer reports usage and a model but no cost."""

import importlib.metadata
from decimal import Decimal

import fakeredis
import pytest

from statemachine import RunState
from statemachine.events import Usage
from statemachine.pricing import Priced
from tests.support.applykit import POLICY, SECOND, T0, apply, event, fold
from worker.drain.prices import GenaiPrices
from worker.runtime import Runtime
from worker.settings import Settings

PRICED = POLICY.__class__(default_run_timeout=None, pricer=GenaiPrices())
SOURCE = f"genai-prices {importlib.metadata.version('genai-prices')}"
USAGE = {"prompt_tokens": 1000, "cached_tokens": 200, "completion_tokens": 100}
# gpt-4o-mini: $0.15 per million input tokens, $0.075 cached, $0.60 output
GPT_4O_MINI = 800 * Decimal("0.15") / 10**6 + 200 * Decimal("0.075") / 10**6 + 100 * Decimal("0.6") / 10**6


def test_a_dated_model_name_is_priced_exactly_by_its_model() -> None:
    priced = GenaiPrices().price("gpt-4o-mini-2024-07-18", "openai", Usage(**USAGE), T0)

    assert priced == Priced(Decimal("0.000195"), SOURCE)
    assert priced.cost_usd == GPT_4O_MINI


def test_an_unknown_model_or_provider_spelling_is_no_price_or_the_tables_guess() -> None:
    prices = GenaiPrices()

    assert prices.price("my-finetune-9000", None, Usage(**USAGE), T0) is None
    assert prices.price("gpt-4o-mini", "az.ai.inference", Usage(**USAGE), T0) == Priced(GPT_4O_MINI, SOURCE)


def steps_after(*data: dict[str, object]) -> RunState:
    created = event("step.created", step_id="s1", at=T0, data={"model": "gpt-4o-mini-2024-07-18"})
    state = fold([created], policy=PRICED)
    for index, item in enumerate(data):
        result = apply(
            state, event("step.completed", step_id="s1", at=T0 + (index + 1) * SECOND, data=item), policy=PRICED
        )
        assert isinstance(result.state, RunState)
        state = result.state
    return state


@pytest.mark.parametrize(
    ("data", "cost", "source"),
    [
        ({"usage": USAGE}, GPT_4O_MINI, SOURCE),  # the model from step.created
        ({"usage": USAGE, "cost_usd": 0.5}, Decimal("0.5"), "reported"),
        ({"usage": USAGE, "model": "my-finetune-9000"}, None, None),  # unknown: null, never 0
        ({}, None, None),  # no usage: nothing to price
    ],
)
def test_a_completed_step_costs_what_was_reported_else_what_the_table_says(
    data: dict[str, object], cost: Decimal | None, source: str | None
) -> None:
    step = steps_after(data).steps["s1"]

    assert (step.cost_usd, step.cost_source) == (cost, source)


def test_runstate_prices_off_leaves_the_drain_without_a_pricer(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RUNSTATE_PRICES", "off")
    off = Runtime(Settings(), fakeredis.FakeRedis())
    monkeypatch.delenv("RUNSTATE_PRICES")
    on = Runtime(Settings(), fakeredis.FakeRedis())

    assert (off.processor.policy.pricer, type(on.processor.policy.pricer)) == (None, GenaiPrices)
