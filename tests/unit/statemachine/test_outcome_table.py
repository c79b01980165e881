"""Every cell of docs/design.md's two outcome tables ("Lifecycles and outcomes"), driven from the tables themselves.

The tables below are copied from docs/design.md and parsed: `→ a → b` is applied (the object passes
through a, then b), `stale` and `rejected` change nothing but the run's last applied sequence.
"""

from typing import NamedTuple

import pytest

from statemachine import ObjectKind, Origin, Outcome, RunState, RunStatus, StepStatus
from statemachine.errors import IllegalTransition
from tests.support.applykit import SECOND, T0, apply, event, fold, record

RUN_TABLE = """
run status \\ event | run.started | run.waiting         | run.resumed | run.completed         | run.failed         | run.cancelled         | run.timed_out
(none)             | → running   | → running → waiting | → running   | → running → completed | → running → failed | → running → cancelled | → running → timeout
running            | stale       | → waiting           | stale       | → completed           | → failed           | → cancelled           | → timeout
waiting            | stale       | stale               | → running   | rejected              | → failed           | → cancelled           | → timeout
completed          | stale       | stale               | stale       | stale                 | stale              | stale                 | stale
failed             | stale       | stale               | stale       | stale                 | stale              | stale                 | stale
cancelled          | stale       | stale               | stale       | stale                 | stale              | stale                 | stale
timeout            | stale       | stale               | stale       | stale                 | stale              | stale                 | stale
"""

STEP_TABLE = """
step status \\ event | step.created  | step.completed            | step.failed            | step.cancelled            | step.expired
(none)              | → in_progress | → in_progress → completed | → in_progress → failed | → in_progress → cancelled | → in_progress → expired
in_progress         | stale         | → completed               | → failed               | → cancelled               | → expired
completed           | stale         | stale                     | stale                  | stale                     | stale
failed              | stale         | stale                     | stale                  | stale                     | stale
cancelled           | stale         | stale                     | stale                  | stale                     | stale
expired             | stale         | stale                     | stale                  | stale                     | stale
"""


class Cell(NamedTuple):
    status: str | None  # the object's status before the event; None: it does not exist
    event_type: str
    outcome: Outcome
    passes: tuple[str, ...]  # statuses the object passes through when applied


def cells(table: str) -> list[Cell]:
    header, *rows = [line for line in table.strip().splitlines()]
    event_types = [name.strip() for name in header.split("|")[1:]]
    found = []
    for row in rows:
        status, *entries = (part.strip() for part in row.split("|"))
        for event_type, entry in zip(event_types, entries, strict=True):
            if entry.startswith("→"):
                passes = tuple(part.strip() for part in entry.split("→")[1:])
                found.append(Cell(None if status == "(none)" else status, event_type, Outcome.APPLIED, passes))
            else:
                found.append(Cell(None if status == "(none)" else status, event_type, Outcome(entry), ()))
    return found


RUN_CELLS = cells(RUN_TABLE)
STEP_CELLS = cells(STEP_TABLE)

EVENT_AT = T0 + 100 * SECOND  # when the event under test occurred
NOW = EVENT_AT + 5  # when it is applied


def cell_id(cell: Cell) -> str:
    return f"{cell.status or 'none'}-{cell.event_type}"


def test_the_tables_cover_every_status_and_event_type() -> None:
    assert {(c.status, c.event_type) for c in RUN_CELLS} == {
        (status, event_type)
        for status in (None, *RunStatus)
        for event_type in (
            "run.started",
            "run.waiting",
            "run.resumed",
            "run.completed",
            "run.failed",
            "run.cancelled",
            "run.timed_out",
        )
    }
    assert {(c.status, c.event_type) for c in STEP_CELLS} == {
        (status, event_type)
        for status in (None, *StepStatus)
        for event_type in ("step.created", "step.completed", "step.failed", "step.cancelled", "step.expired")
    }
    assert len(RUN_CELLS) == 49
    assert len(STEP_CELLS) == 30


RUN_SETUP = {
    "running": [],
    "waiting": ["run.waiting"],
    "completed": ["run.completed"],
    "failed": ["run.failed"],
    "cancelled": ["run.cancelled"],
    "timeout": ["run.timed_out"],
}


def run_in(status: str) -> RunState:
    events = [event("run.started", at=T0)]
    events += [event(t, at=T0 + (i + 1) * SECOND) for i, t in enumerate(RUN_SETUP[status])]
    state = fold(events)
    assert state.run.status == status
    return state


def transition(n: int, kind: ObjectKind, object_id: str, before: str | None, after: str, ev_id: str, ev_type: str):
    return record(
        n,
        kind,
        object_id,
        before,
        after,
        at=EVENT_AT,
        applied_at=NOW,
        event_id=ev_id,
        event_type=ev_type,
        origin=Origin.EVENT,
    )


@pytest.mark.parametrize("cell", RUN_CELLS, ids=cell_id)
def test_run_event_outcome_matches_the_table(cell: Cell) -> None:
    before = run_in(cell.status) if cell.status is not None else None
    last_sequence = before.last_sequence + 1 if before is not None else 1
    ev = event(cell.event_type, at=EVENT_AT, sequence=last_sequence)

    result = apply(before, ev, now=NOW)

    assert result.outcome is cell.outcome
    assert result.late_usage is False
    assert result.remember_id is True
    assert isinstance(result.state, RunState)
    if cell.outcome is Outcome.APPLIED:
        assert result.rejection is None
        walked = [cell.status, *cell.passes]
        offset = before.history_len if before is not None else 0
        assert result.history == tuple(
            transition(offset + i + 1, ObjectKind.RUN, "run_1", walked[i], walked[i + 1], ev.id, ev.type)
            for i in range(len(cell.passes))
        )
        assert result.state.run.status == cell.passes[-1]
        assert result.state.history_len == offset + len(cell.passes)
        assert result.state.last_sequence == last_sequence
        return
    assert before is not None
    assert result.history == ()
    assert result.state == before.model_copy(update={"last_sequence": last_sequence})
    if cell.outcome is Outcome.REJECTED:
        assert isinstance(result.rejection, IllegalTransition)
        assert result.rejection.code == "illegal_transition"
        assert str(result.rejection) == f"illegal_transition: {cell.event_type} in status {cell.status}"
    else:
        assert result.rejection is None


def test_the_one_rejected_cell_reads_as_design_spells_it() -> None:
    before = run_in("waiting")
    result = apply(before, event("run.completed", at=EVENT_AT))

    assert result.outcome is Outcome.REJECTED
    assert str(result.rejection) == "illegal_transition: run.completed in status waiting"
    assert (result.rejection.code, result.rejection.detail) == ("illegal_transition", "run.completed in status waiting")
    assert result.state == before


STEP_SETUP = {
    "in_progress": [],
    "completed": ["step.completed"],
    "failed": ["step.failed"],
    "cancelled": ["step.cancelled"],
    "expired": ["step.expired"],
}


def step_in(status: str | None) -> RunState:
    events = [event("run.started", at=T0)]
    if status is not None:
        events.append(event("step.created", step_id="step_1", at=T0 + SECOND))
        events += [event(t, step_id="step_1", at=T0 + (i + 2) * SECOND) for i, t in enumerate(STEP_SETUP[status])]
    state = fold(events)
    if status is not None:
        assert state.steps["step_1"].status == status
    return state


@pytest.mark.parametrize("cell", STEP_CELLS, ids=cell_id)
def test_step_event_outcome_matches_the_table(cell: Cell) -> None:
    before = step_in(cell.status)
    last_sequence = before.last_sequence + 1
    ev = event(cell.event_type, step_id="step_1", at=EVENT_AT, sequence=last_sequence)

    result = apply(before, ev, now=NOW)

    assert result.outcome is cell.outcome
    assert (result.rejection, result.late_usage, result.remember_id) == (None, False, True)
    assert isinstance(result.state, RunState)
    assert result.state.run == before.run  # a step event never moves its run
    if cell.outcome is Outcome.APPLIED:
        walked = [cell.status, *cell.passes]
        assert result.history == tuple(
            transition(before.history_len + i + 1, ObjectKind.STEP, "step_1", walked[i], walked[i + 1], ev.id, ev.type)
            for i in range(len(cell.passes))
        )
        step = result.state.steps["step_1"]
        assert step.status == cell.passes[-1]
        assert step.created_at == (EVENT_AT if cell.status is None else before.steps["step_1"].created_at)
        assert result.state.history_len == before.history_len + len(cell.passes)
        assert result.state.last_sequence == last_sequence
        return
    assert result.history == ()
    assert result.state == before.model_copy(update={"last_sequence": last_sequence})


@pytest.mark.parametrize(
    ("event_type", "status"),
    [
        ("step.created", "in_progress"),
        ("step.completed", "completed"),
        ("step.failed", "failed"),
        ("step.cancelled", "cancelled"),
        ("step.expired", "expired"),
    ],
)
def test_a_step_event_without_a_run_creates_both_each_in_its_own_entry(event_type: str, status: str) -> None:
    ev = event(event_type, step_id="step_1", at=EVENT_AT)

    result = apply(None, ev, now=NOW)

    assert result.outcome is Outcome.APPLIED
    expected = [
        transition(1, ObjectKind.RUN, "run_1", None, "running", ev.id, ev.type),
        transition(2, ObjectKind.STEP, "step_1", None, "in_progress", ev.id, ev.type),
    ]
    if status != "in_progress":
        expected.append(transition(3, ObjectKind.STEP, "step_1", "in_progress", status, ev.id, ev.type))
    assert result.history == tuple(expected)
    assert isinstance(result.state, RunState)
    assert (result.state.run.status, result.state.run.created_at, result.state.run.started) == (
        "running",
        EVENT_AT,
        False,
    )
    assert result.state.steps["step_1"].status == status
    assert result.state.history_len == len(expected)


# The README's run table has one more column: run.heartbeat moves the run's inactivity clock and
# nothing else ("clock": applied, no history); it never creates a run.
HEARTBEAT_COLUMN = {
    None: "stale",
    "running": "clock",
    "waiting": "stale",
    "completed": "stale",
    "failed": "stale",
    "cancelled": "stale",
    "timeout": "stale",
}


@pytest.mark.parametrize(("status", "entry"), HEARTBEAT_COLUMN.items(), ids=str)
def test_heartbeat_outcome_matches_the_table(status: str | None, entry: str) -> None:
    before = run_in(status) if status is not None else None

    result = apply(before, event("run.heartbeat", at=EVENT_AT), now=NOW)

    assert result.outcome is (Outcome.APPLIED if entry == "clock" else Outcome(entry))
    assert (result.history, result.rejection, result.remember_id) == ((), None, False)
    assert result.state == before  # no inactivity timeout here: not even the clock moves
