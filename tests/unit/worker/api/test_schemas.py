"""The HTTP API's document describes the domain's records from their one definition, and its
lists from one page model that one builder fills."""

import pytest
from pydantic import BaseModel

from statemachine.models import TRANSITION_TIMES, Transition
from worker.api.paging import Order, envelope, page_of
from worker.api.schemas import History, HistoryRecord, RunList, StepList


def test_a_history_record_has_the_transition_fields_with_its_times_as_text() -> None:
    stored, shown = Transition.model_fields, HistoryRecord.model_fields
    assert [(name, f.alias) for name, f in shown.items()] == [(name, f.alias) for name, f in stored.items()]
    assert {name: f.annotation for name, f in shown.items() if f.annotation != stored[name].annotation} == {
        name: str for name in TRANSITION_TIMES
    }
    assert HistoryRecord.model_json_schema()["required"] == [f.alias or n for n, f in stored.items() if f.is_required()]
    assert "additionalProperties" not in HistoryRecord.model_json_schema()


def test_a_page_is_the_envelope_each_list_model_reads() -> None:
    ids = [f"id{n}" for n in range(5)]
    page = page_of(ids, limit=2, order=Order.ASC, after=None, before=None, what="steps")
    listed = envelope([{"n": n} for n in range(2)], page)
    assert listed == {
        "object": "list",
        "data": [{"n": 0}, {"n": 1}],
        "first_id": "id0",
        "last_id": "id1",
        "has_more": True,
    }
    assert StepList.model_validate(listed).has_more


@pytest.mark.parametrize(("count", "more"), [(0, False), (2, False), (3, True)])
def test_a_page_has_more_only_past_its_limit(count: int, more: bool) -> None:
    page = page_of([f"id{n}" for n in range(count)], limit=2, order=Order.ASC, after=None, before=None, what="steps")
    assert (page.ids, page.has_more) == ([f"id{n}" for n in range(min(count, 2))], more)


@pytest.mark.parametrize(
    ("model", "fields"),
    [(RunList, ["object", "data", "first_id", "last_id", "has_more"]), (History, ["object", "data"])],
)
def test_each_list_keeps_its_own_name_in_the_document(model: type[BaseModel], fields: list[str]) -> None:
    schema = model.model_json_schema()
    assert (schema["title"], schema["required"]) == (model.__name__, fields)
