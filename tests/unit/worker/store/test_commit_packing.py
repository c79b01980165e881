"""The commit's script arguments are packed by name (`worker/store/commit.py`) and held here
against `lua/commit.lua`'s KEYS/ARGV header, the way the outcome table is held against the code."""

import re

import orjson
import pytest

from statemachine.apply import Incoming, apply_event
from statemachine.errors import InvalidEvent
from statemachine.events import parse_event
from statemachine.models import RunState, Transition
from statemachine.status import Origin
from worker.store import commit as packing
from worker.store import keys, lua

HEADER = re.compile(r"^-- (KEYS|ARGV)\s+(\d+) (\w+)\s", re.M)


def declared(kind: str, source: str | None = None) -> list[tuple[int, str]]:
    text = lua.source("commit") if source is None else source
    return [(int(n), name) for k, n, name in HEADER.findall(text) if k == kind]


def test_the_scripts_header_numbers_its_keys_and_arguments_from_one_without_gaps() -> None:
    for kind in ("KEYS", "ARGV"):
        numbers = [n for n, _ in declared(kind)]
        assert numbers == list(range(1, len(numbers) + 1)), kind


def test_the_packing_names_the_keys_and_arguments_the_script_declares_in_its_order() -> None:
    assert [name for _, name in declared("KEYS")] == list(packing.KEYS)
    assert [name for _, name in declared("ARGV")] == list(packing.ARGV)


def test_the_keys_and_arguments_are_named_in_the_order_they_are_packed() -> None:
    commit = packing.Commit(keys.ref("acct", "r1"), 7, consumed=3, now=5_000, state=_state(), finished=True)
    assert list(packing.named_keys(commit.run)) == list(packing.KEYS)
    assert list(packing.named_args(commit, (0, 0, 0), retention=60, recover_after_ms=10_000)) == list(packing.ARGV)


def test_the_script_reads_no_argument_past_the_declared_ones_by_a_fixed_index() -> None:
    body = lua.source("commit")
    used = {int(n) for n in re.findall(r"ARGV\[(\d+)\]", body)}
    assert used == set(range(1, len(packing.ARGV) + 1))
    assert {int(n) for n in re.findall(r"KEYS\[(\d+)\]", body)} == set(range(1, len(packing.KEYS) + 1))


def test_a_drifted_header_is_found() -> None:
    swapped = lua.source("commit").replace("-- ARGV  2 document", "-- ARGV  2 documents")
    assert [name for _, name in declared("ARGV", swapped)] != list(packing.ARGV)


def _state() -> RunState:
    return RunState.model_validate(
        {"run": {"id": "r1", "account_id": "acct", "status": "completed", "created_at": 1_000, "completed_at": 2_000}}
    )


def test_each_argument_lands_at_the_position_the_script_reads_it_from() -> None:
    commit = packing.Commit(
        keys.ref("acct", "r1"), 7, consumed=3, now=5_000, had_document=True, state=_state(), finished=True
    )
    commit.rejected.append(('{"bad":', InvalidEvent(("not JSON",))))
    commit.next_due = 9_000
    script_keys, args = packing.pack(commit, retention=60, recover_after_ms=10_000)
    by_name = dict(zip(packing.ARGV, args, strict=False))
    assert by_name["expected_version"] == 7
    assert (by_name["member"], by_name["finished"], by_name["tombstone"]) == ("acct/r1", "1", "completed")
    assert (by_name["consumed"], by_name["next_due"], by_name["retention"], by_name["now"]) == (3, 9_000, 60, 5_000)
    assert (by_name["counts"], by_name["read"], by_name["timer"]) == (
        "1,0,0",
        "D",
        keys.run_timer(keys.ref("acct", "r1")),
    )
    assert len(args) == len(packing.ARGV) + 1  # the one rejected record follows the named arguments
    assert b'"reason":"invalid_event"' in args[-1]
    assert script_keys[packing.KEYS.index("inbox")] == "runstate:inbox:{acct/r1}"  # one hash tag: account and id
    assert script_keys[packing.KEYS.index("run")] == "runstate:run:{acct/r1}"
    assert script_keys[packing.KEYS.index("account_runs")] == "runstate:runs:{acct}"  # the run's account's index


@pytest.mark.parametrize("finished", [False, True])
def test_only_a_finished_run_is_marked_to_expire(finished: bool) -> None:
    commit = packing.Commit(keys.ref("acct", "r1"), 0, consumed=1, now=5_000, state=_state(), finished=finished)
    _, args = packing.pack(commit, retention=60, recover_after_ms=10_000)
    assert args[packing.ARGV.index("finished")] == ("1" if finished else "0")


def _applied(*events: dict[str, str]) -> tuple[RunState, list[Transition]]:
    state: RunState | None = None
    history: list[Transition] = []
    for event in events:
        incoming = Incoming(parse_event(orjson.dumps({"run_id": "r1", **event}).decode()), Origin.EVENT, "acct")
        result = apply_event(state, incoming, now=5_000)
        assert isinstance(result.state, RunState)
        state, history = result.state, history + list(result.history)
    assert state is not None
    return state, history


def test_the_document_keeps_the_open_steps_and_the_closed_ones_follow_as_pairs() -> None:
    state, history = _applied(
        {"id": "e1", "type": "run.started"},
        *({"id": f"c{n}", "type": "step.created", "step_id": f"s{n}"} for n in (1, 2, 3)),
        {"id": "d2", "type": "step.completed", "step_id": "s2"},
    )
    commit = packing.Commit(keys.ref("acct", "r1"), 0, consumed=5, now=5_000, state=state, history=history)
    _, args = packing.pack(commit, retention=60, recover_after_ms=10_000)
    by_name = dict(zip(packing.ARGV, args, strict=False))
    assert list(orjson.loads(by_name["document"])["steps"]) == ["s1", "s3"]
    assert by_name["created"] == "s1\ns2\ns3"  # one argument, in creation order
    assert by_name["counts"] == "0,0,1"
    closed_id, closed = args[len(packing.ARGV) :]
    assert (closed_id, orjson.loads(closed)["status"]) == ("s2", "completed")
    # the script makes each step's index key from what goes around its id
    assert by_name["index_before"] + "s1" + by_name["index_after"] == keys.step_index("acct", "s1")


def test_a_step_closed_before_this_commit_is_not_written_again() -> None:
    state, history = _applied(
        {"id": "e1", "type": "run.started"},
        {"id": "c1", "type": "step.created", "step_id": "s1"},
        {"id": "d1", "type": "step.completed", "step_id": "s1"},
        {"id": "c2", "type": "step.created", "step_id": "s2"},
    )
    later = [t for t in history if t.id == "s2"]  # a commit of the last event alone
    commit = packing.Commit(keys.ref("acct", "r1"), 3, consumed=1, now=5_000, state=state, history=later)
    _, args = packing.pack(commit, retention=60, recover_after_ms=10_000)
    by_name = dict(zip(packing.ARGV, args, strict=False))
    assert (by_name["created"], by_name["counts"], len(args)) == ("s2", "0,0,0", len(packing.ARGV))
    assert list(orjson.loads(by_name["document"])["steps"]) == ["s2"]
