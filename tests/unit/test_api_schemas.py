"""The HTTP API's document describes the domain's records from their one definition, and its
lists from one page model that one builder fills."""

from typing import Any

import pytest
from pydantic import BaseModel

from statemachine.models import TRANSITION_TIMES, Transition
from worker.api.runs import _page
from worker.api.schemas import History, HistoryRecord, RunList, StepList


def test_a_history_record_has_the_transition_fields_with_its_times_as_text() -> None:
    stored, shown = Transition.model_fields, HistoryRecord.model_fields
    assert [(name, f.alias) for name, f in shown.items()] == [(name, f.alias) for name, f in stored.items()]
    assert {name: f.annotation for name, f in shown.items() if f.annotation != stored[name].annotation} == {
        name: str for name in TRANSITION_TIMES
    }
    assert HistoryRecord.model_json_schema()["required"] == [f.alias or n for n, f in stored.items() if f.is_required()]
    assert "additionalProperties" not in HistoryRecord.model_json_schema()


def test_a_page_renders_its_items_only_and_reads_one_more_to_tell_there_are_more() -> None:
    rendered: list[int] = []

    def render(item: int) -> dict[str, Any]:
        rendered.append(item)
        return {"n": item}

    page = _page(((f"id{n}", n) for n in range(5)), 2, render)
    assert page == {
        "object": "list",
        "data": [{"n": 0}, {"n": 1}],
        "first_id": "id0",
        "last_id": "id1",
        "has_more": True,
    }
    assert rendered == [0, 1]
    assert StepList.model_validate(page).has_more


@pytest.mark.parametrize(("count", "more"), [(0, False), (2, False), (3, True)])
def test_a_page_has_more_only_past_its_limit(count: int, more: bool) -> None:
    page = _page(((f"id{n}", n) for n in range(count)), 2, lambda n: {"n": n})
    ids = [f"id{n}" for n in range(min(count, 2))]
    expected = {"first_id": ids[0] if ids else None, "last_id": ids[-1] if ids else None, "has_more": more}
    assert {key: page[key] for key in expected} == expected


@pytest.mark.parametrize(
    ("model", "fields"),
    [(RunList, ["object", "data", "first_id", "last_id", "has_more"]), (History, ["object", "data"])],
)
def test_each_list_keeps_its_own_name_in_the_document(model: type[BaseModel], fields: list[str]) -> None:
    schema = model.model_json_schema()
    assert (schema["title"], schema["required"]) == (model.__name__, fields)
