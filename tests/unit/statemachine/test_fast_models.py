"""The apply path's shortcuts build exactly what pydantic would: `evolve` is model_copy,
`trusted`, `fresh` and `new_transition` are the validated constructor, `Transition.to_json` is
model_dump_json."""

from decimal import Decimal

import pytest

from statemachine.events import ErrorInfo, Usage
from statemachine.models import (
    TRANSITION_TIMES,
    Run,
    RunState,
    Step,
    Transition,
    evolve,
    fresh,
    new_transition,
    trusted,
)
from statemachine.status import ObjectKind, Origin, RunStatus, StepStatus

STEP = Step(id="s1", run_id="r1", created_at=1_000, model="gpt-4o", tags=["a"], metadata={"k": "v"})
RUN = Run(id="r1", account_id="acct", created_at=1_000, timeout_seconds=60.0, timeout_at=61_000)


@pytest.mark.parametrize(
    ("model", "update"),
    [
        (STEP, {"status": StepStatus.COMPLETED, "completed_at": 2_000, "usage": Usage(prompt_tokens=3)}),
        (STEP, {"cost_usd": Decimal("0.25"), "error": ErrorInfo(code="x", message="y")}),
        (RUN, {"status": RunStatus.WAITING, "waiting_until": 9_000}),
        (RUN, {}),
    ],
)
def test_evolve_is_model_copy(model: Step | Run, update: dict[str, object]) -> None:
    made, expected = evolve(model, update), model.model_copy(update=update)
    assert made == expected
    assert list(made.__dict__) == list(expected.__dict__)
    assert made.model_fields_set == expected.model_fields_set
    assert made.model_dump_json() == expected.model_dump_json()
    assert model.__dict__ != made.__dict__ or not update  # the original is untouched


def test_evolve_leaves_the_original_frozen_and_unchanged() -> None:
    evolve(STEP, {"status": StepStatus.FAILED})
    assert STEP.status is StepStatus.IN_PROGRESS
    with pytest.raises(ValueError, match="frozen"):
        evolve(STEP, {}).status = StepStatus.FAILED  # type: ignore[misc]


def test_fresh_is_the_validated_constructor_with_defaults() -> None:
    given = {"id": "s2", "run_id": "r1", "created_at": 5, "model": "m", "expires_at": 9}
    made, expected = fresh(Step, given), Step(**given)  # type: ignore[arg-type]
    assert made == expected
    assert list(made.__dict__) == list(expected.__dict__)  # the class's field order
    assert made.model_dump_json(exclude_defaults=True) == expected.model_dump_json(exclude_defaults=True)
    assert fresh(Step, given).tags is not made.tags  # default factories make a new list each time


def test_fresh_refuses_a_missing_required_field() -> None:
    with pytest.raises(TypeError, match=r"Step\.created_at is required"):
        fresh(Step, {"id": "s", "run_id": "r"})


def test_trusted_is_the_validated_constructor_when_every_field_is_given() -> None:
    parts = {"run": RUN, "steps": {"s1": STEP}, "version": 0, "history_len": 2, "last_sequence": 1}
    assert trusted(RunState, dict(parts)) == RunState(**parts)  # type: ignore[arg-type]


@pytest.mark.parametrize("note", [None, "late_usage"])
@pytest.mark.parametrize("before", [None, "in_progress"])
def test_transition_to_json_is_model_dump_json(note: str | None, before: str | None) -> None:
    t = Transition(
        n=7,
        object=ObjectKind.STEP,
        id="step_7",
        run_id="run_42",
        from_=before,
        to="completed",
        event_id="evt_8f2c",
        event_type="step.completed",
        origin=Origin.EVENT,
        at=1_764_064_803_250,
        applied_at=1_764_064_803_262,
        note=note,
    )
    assert t.to_json() == t.model_dump_json(by_alias=True, exclude_defaults=True).encode()


def test_copying_a_trusted_object_never_changes_the_fields_set_its_class_shares() -> None:
    parts = {"run": RUN, "steps": {}, "version": 0, "history_len": 0, "last_sequence": 0}
    first = trusted(RunState, dict(parts))
    first.model_copy(update={"version": 3})
    evolve(first, {"last_sequence": 2})
    assert trusted(RunState, dict(parts)).model_fields_set == set(RunState.model_fields)


TRANSITION_FIELDS: dict[str, object] = {
    "n": 3,
    "object": ObjectKind.RUN,
    "id": "run_42",
    "run_id": "run_42",
    "from_": "running",
    "to": "waiting",
    "event_id": "evt_1",
    "event_type": "run.waiting",
    "origin": Origin.EVENT,
    "at": 1_764_064_803_250,
    "applied_at": 1_764_064_803_262,
    "note": None,
    "parent_step_id": None,
}


def test_new_transition_is_the_validated_constructor() -> None:
    made, expected = new_transition(**TRANSITION_FIELDS), Transition(**TRANSITION_FIELDS)
    assert made == expected
    assert list(made.__dict__) == list(expected.__dict__) == list(Transition.model_fields)
    assert made.model_fields_set == set(Transition.model_fields)
    assert made.to_json() == expected.to_json()


def test_new_transition_takes_its_fields_by_name_only() -> None:
    with pytest.raises(TypeError, match="positional"):
        new_transition(3)  # type: ignore[call-arg]


def test_the_record_times_are_the_fields_written_as_its_type_variable() -> None:
    assert TRANSITION_TIMES == ("at", "applied_at")


def test_new_transition_refuses_a_missing_field_even_one_with_a_default() -> None:
    given = {name: value for name, value in TRANSITION_FIELDS.items() if name != "note"}
    with pytest.raises(TypeError, match=r"Transition needs every field; missing \['note'\]"):
        new_transition(**given)
