"""The HTTP API's document describes the domain's records from their one definition."""

from statemachine.models import TRANSITION_TIMES, Transition
from worker.api.schemas import HistoryRecord


def test_a_history_record_has_the_transition_fields_with_its_times_as_text() -> None:
    stored, shown = Transition.model_fields, HistoryRecord.model_fields
    assert [(name, f.alias) for name, f in shown.items()] == [(name, f.alias) for name, f in stored.items()]
    assert {name: f.annotation for name, f in shown.items() if f.annotation != stored[name].annotation} == {
        name: str for name in TRANSITION_TIMES
    }
    assert HistoryRecord.model_json_schema()["required"] == [f.alias or n for n, f in stored.items() if f.is_required()]
    assert "additionalProperties" not in HistoryRecord.model_json_schema()
