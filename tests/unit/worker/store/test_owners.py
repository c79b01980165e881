"""A run's reference and keys (account and run id in one hash tag), and which account's run a
run id alone names."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from statemachine.bounds import KEY_ID_PATTERN
from worker.store import keys
from worker.store.owners import AmbiguousRun, choose

IDS = st.from_regex(KEY_ID_PATTERN, fullmatch=True)


@given(account=IDS, run_id=IDS)
def test_a_reference_splits_back_into_its_account_and_run_id(account: str, run_id: str) -> None:
    run = keys.ref(account, run_id)
    assert keys.parts(run) == (account, run_id)
    assert keys.inbox(run) == f"runstate:inbox:{{{account}/{run_id}}}"  # one hash tag, closed where it should


def test_two_accounts_runs_of_one_id_share_no_key() -> None:
    ours, theirs = keys.ref("acct_a", "run_42"), keys.ref("acct_b", "run_42")
    named = (keys.run, keys.history, keys.seen, keys.tombstone, keys.inbox, keys.held, keys.run_timer)
    assert {key(ours) for key in named}.isdisjoint({key(theirs) for key in named})
    assert keys.run(ours) == "runstate:run:{acct_a/run_42}"


@pytest.mark.parametrize(
    ("holders", "chosen", "account"),
    [(set(), None, None), (set(), "acct_c", None), ({"acct_a"}, None, "acct_a"), ({"acct_a"}, "acct_c", "acct_a")],
)
def test_one_holder_or_none_decides_whatever_is_chosen(holders: set[str], chosen: str | None, account: str) -> None:
    assert choose("r", holders, chosen) == account


def test_among_several_holders_only_a_chosen_one_decides() -> None:
    assert choose("r", {"acct_a", "acct_b"}, "acct_b") == "acct_b"
    with pytest.raises(AmbiguousRun) as refused:
        choose("r", {"acct_b", "acct_a"}, "acct_c")
    assert str(refused.value) == "run 'r' is held by several accounts (acct_a, acct_b); choose one with --account"
