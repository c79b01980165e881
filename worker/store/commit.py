"""One run's commit: what a drain did to the run (filled by the drain) and the script
arguments that write it (packed here, by name, in `lua/commit.lua`'s order).

The document keeps the run and its open steps; a step that closes leaves it for the run's
closed steps (`keys.steps`), written one step at a time, so a commit costs what it changed,
not what the run holds.

The records the commit stores are built here too: the rejected records (`records`) and
the webhook outbox (`outbox`), from what the drain hands over: rejected texts with their
errors, the account's subscriptions.
"""

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, NamedTuple

import orjson
from pydantic import TypeAdapter

from statemachine.errors import RunstateError
from statemachine.models import RunState, Step, Transition, evolve
from statemachine.ordering import Held
from statemachine.status import STEP_TERMINAL, ObjectKind
from worker.store import keys
from worker.store.keys import RunRef
from worker.store.outbox import outbox_records
from worker.store.records import rejected_record
from worker.store.subscriptions import Subscription

HELD_BUFFER = TypeAdapter(list[Held])  # a run's sequence buffer as stored
_STEP_JSON = Step.__pydantic_serializer__  # `model_dump_json` less its wrapper: one call per closed step

# lua/commit.lua's KEYS and ARGV, by name and in order (tests/unit/worker/store holds them
# against the script's header, and `named_keys` and `named_args` to them)
KEYS = (
    "run",
    "history",
    "seen",
    "tombstone",
    "runs",
    "stats",
    "rejected",
    "inbox",
    "held",
    "timers",
    "webhook_ready",
    "versions",
    "expiries",
    "queued",
    "account_runs",
    "steps",
    "step_order",
)
ARGV = (
    "expected_version",
    "document",
    "created_at",
    "member",
    "finished",
    "tombstone",
    "counts",
    "consumed",
    "held",
    "timer",
    "next_due",
    "recover_after_ms",
    "retention",
    "history",
    "seen",
    "counters",
    "read",
    "now",
    "created",
    "delivery_prefix",
    "webhook_timers",
    "index_before",
    "index_after",
)


@dataclass(slots=True)
class Commit:
    """Everything one drain does to one run, written at once."""

    run: RunRef
    expected_version: int
    consumed: int  # inbox entries applied (from its head)
    now: int  # the drain's time (ms, Redis TIME when it loaded the run)
    had_document: bool = False  # as loaded: the compare-and-set vouches it is still so
    had_held: bool = False
    state: RunState | None = None  # None: the document is unchanged
    history: list[Transition] = field(default_factory=list)
    seen: list[str] = field(default_factory=list)
    counters: dict[str, int] = field(default_factory=dict)
    rejected: list[tuple[str, RunstateError]] = field(default_factory=list)  # (the event's text, why)
    held: list[Held] = field(default_factory=list)
    next_due: int | None = None
    finished: bool = False
    subscribers: Sequence[Subscription] = ()  # the enabled subscriptions of the run's account


class Packed(NamedTuple):
    """A commit as the script takes it."""

    keys: list[str]
    args: list[Any]


DELIVERY_PREFIX, WEBHOOK_TIMERS_PREFIX = keys.delivery(""), keys.webhook_timers("")


def named_keys(run: RunRef) -> dict[str, str]:
    """The script's keys for one run, by name, in KEYS's order."""
    return {
        "run": keys.run(run),
        "history": keys.history(run),
        "seen": keys.seen(run),
        "tombstone": keys.tombstone(run),
        "runs": keys.RUNS,
        "stats": keys.STATS,
        "rejected": keys.REJECTED,
        "inbox": keys.inbox(run),
        "held": keys.held(run),
        "timers": keys.TIMERS,
        "webhook_ready": keys.WEBHOOK_READY,
        "versions": keys.VERSIONS,
        "expiries": keys.EXPIRIES,
        "queued": keys.QUEUED,
        "account_runs": keys.account_runs(keys.parts(run)[0]),
        "steps": keys.steps(run),
        "step_order": keys.step_order(run),
    }


def pack(commit: Commit, *, retention: int, recover_after_ms: int) -> Packed:
    """The script's keys and arguments for one commit: the named ones, then the rejected
    records, the outbox's (delivery id, subscription id, record) triples, and the (step id, step)
    pairs of the steps it closed or changed while closed."""
    state = commit.state
    rejected = [rejected_record(text, error, commit.now) for text, error in commit.rejected]
    deliveries = outbox_records(state, commit.history, commit.subscribers, commit.now) if state is not None else []
    closed = _closed_steps(commit)
    counts = (len(rejected), len(deliveries), len(closed) // 2)
    named = named_args(commit, counts, retention=retention, recover_after_ms=recover_after_ms)
    outbox = [x for delivery in deliveries for x in delivery]
    # the dicts are written in the script's order (a test holds them to it): their values are the lists
    return Packed(list(named_keys(commit.run).values()), [*named.values(), *rejected, *outbox, *closed])


def named_args(
    commit: Commit, counts: tuple[int, int, int], *, retention: int, recover_after_ms: int
) -> dict[str, Any]:
    """The script's named arguments for one commit, in ARGV's order; `counts`: how many rejected
    records, deliveries and closed steps follow them."""
    state = commit.state
    before, after = keys.step_index_around(keys.parts(commit.run)[0])
    return {
        "expected_version": commit.expected_version,
        "document": _document(state) if state is not None else "",
        "created_at": state.run.created_at if state is not None else 0,
        "member": commit.run,
        "finished": "1" if commit.finished else "0",
        "tombstone": state.run.status.value if state is not None else "",
        "counts": ",".join(map(str, counts)),
        "consumed": commit.consumed,
        "held": HELD_BUFFER.dump_json(commit.held) if commit.held else "",
        "timer": keys.run_timer(commit.run),
        "next_due": "" if commit.next_due is None else commit.next_due,
        "recover_after_ms": recover_after_ms,
        "retention": retention,
        "history": b"\n".join(t.to_json() for t in commit.history),  # compact JSON holds no raw newline
        "seen": orjson.dumps(commit.seen) if commit.seen else "",
        "counters": orjson.dumps(commit.counters) if commit.counters else "",
        "read": ("D" if commit.had_document else "") + ("H" if commit.had_held else ""),
        "now": commit.now,
        # one argument, however many steps: ids hold no newline
        "created": "\n".join(_created(commit)) if state is not None else "",
        "delivery_prefix": DELIVERY_PREFIX,
        "webhook_timers": WEBHOOK_TIMERS_PREFIX,
        "index_before": before,
        "index_after": after,
    }


def _document(state: RunState) -> str:
    """The stored document: the run and its open steps (the closed ones are kept apart)."""
    steps = state.steps
    if any(step.status in STEP_TERMINAL for step in steps.values()):
        open_steps = {i: step for i, step in steps.items() if step.status not in STEP_TERMINAL}
        state = evolve(state, {"steps": open_steps})
    return state.model_dump_json(exclude_defaults=True)


def _created(commit: Commit) -> list[str]:
    """The steps the commit created, in creation order."""
    return [t.id for t in commit.history if t.object is ObjectKind.STEP and t.from_ is None]


def _closed_steps(commit: Commit) -> list[str | bytes]:
    """(step id, Step JSON) pairs, flat, of the steps this commit changed that are closed now."""
    state = commit.state
    if state is None:
        return []
    changed = dict.fromkeys(t.id for t in commit.history if t.object is ObjectKind.STEP)
    pairs: list[str | bytes] = []
    for step_id in changed:
        step = state.steps[step_id]
        if step.status in STEP_TERMINAL:
            pairs += [step_id, _STEP_JSON.to_json(step, exclude_defaults=True)]
    return pairs
