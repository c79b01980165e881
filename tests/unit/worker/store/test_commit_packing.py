"""The commit's script arguments are packed by name (`worker/store/commit.py`) and held here
against `lua/commit.lua`'s KEYS/ARGV header, the way the outcome table is held against the code."""

import re

import pytest

from statemachine.errors import InvalidEvent
from statemachine.models import RunState
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
    assert list(packing.named_args(commit, 0, 0, retention=60, recover_after_ms=10_000)) == list(packing.ARGV)


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
        "1,0",
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


def test_the_step_index_keys_go_in_one_argument_a_line_each() -> None:
    state = RunState.model_validate(
        {
            "run": {"id": "r1", "account_id": "acct", "status": "completed", "created_at": 1_000},
            "steps": {s: {"id": s, "run_id": "r1", "created_at": 1_000} for s in ("s1", "s2")},
        }
    )
    commit = packing.Commit(keys.ref("acct", "r1"), 0, consumed=1, now=5_000, state=state, finished=True)
    _, args = packing.pack(commit, retention=60, recover_after_ms=10_000)
    assert args[packing.ARGV.index("step_index")] == f"{keys.step_index('acct', 's1')}\n{keys.step_index('acct', 's2')}"
    assert len(args) == len(packing.ARGV)  # nothing follows: no rejected record, no delivery
