"""Which account's run an id names, when nothing else says: the trusted paths (`publish`, the
CLI's reads) accept a run id alone, and several accounts may each hold a run of that id.

The accounts holding each run id are recorded in Redis when an event is published for it
(`keys.owners`, written by `lua/publish.lua`, read by `Store.owners`); this decides among them.
"""


class AmbiguousRun(LookupError):
    """Raised when a run id alone is given and several accounts hold a run of that id."""

    def __init__(self, run_id: str, accounts: set[str]) -> None:
        listed = ", ".join(sorted(accounts))
        super().__init__(f"run {run_id!r} is held by several accounts ({listed}); choose one with --account")
        self.run_id = run_id
        self.accounts = accounts


def choose(run_id: str, holders: set[str], chosen: str | None = None) -> str | None:
    """The account whose run `run_id` means: the one holding it, or `chosen` among several; None
    when no account holds it. Raises AmbiguousRun when several do and `chosen` is none of them."""
    if len(holders) == 1:
        return next(iter(holders))
    if not holders:
        return None
    if chosen in holders:
        return chosen
    raise AmbiguousRun(run_id, holders)
