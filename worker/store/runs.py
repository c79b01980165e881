"""Runs, steps, history, inboxes, rejected events and counters in Redis.

A run's document holds the run and its open steps; its closed steps are kept apart
(`keys.steps`, in creation order by `keys.step_order`). A drain reads the document and the
closed steps its events name; a read assembles the whole run.

Events reach a run through its inbox (a list, in publish order). The only write path for
a run is `commit`: one Lua compare-and-set on the run's version that also writes its
history, the seen event ids, counters, rejected records and sequence buffer, removes the
inbox entries it applied and sets the run's next timer. Two workers draining one run
cannot lose an update or reorder its events (both read the same inbox head; the loser
reloads); a process that dies mid-batch leaves either the whole commit or none of it.
"""

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple, cast

import orjson
from redis import Redis

from statemachine.models import RunState, Step, Tombstone, Transition, evolve
from statemachine.ordering import Held
from worker.store import keys, lua
from worker.store.commit import HELD_BUFFER, Commit, Packed, pack
from worker.store.keys import RunRef
from worker.store.replies import as_text, ms

READ_ATTEMPTS = 5  # reads of a run that commits keep changing, the last one taken as it is
WAKE_TTL_MS = 2_000  # a wake-up job lost before it started costs at most this much delay


@dataclass(frozen=True, slots=True)
class Loaded:
    """A run as read before draining its inbox; parsed by the caller, one run at a time, so
    that one undecodable run cannot stop the others."""

    run: RunRef
    version: int
    document: bytes | None
    tombstone: bytes | None
    inbox: list[bytes]
    held_json: bytes | None

    def state(self) -> RunState | Tombstone | None:
        if self.document is not None:
            return RunState.model_validate_json(self.document)
        if self.tombstone is not None:
            return Tombstone(keys.parts(self.run)[1], self.tombstone.decode())
        return None

    def held(self) -> list[Held]:
        return HELD_BUFFER.validate_json(self.held_json) if self.held_json else []


class Known(NamedTuple):
    """What a stored run already holds of what its queued events name."""

    seen: frozenset[str]  # the event ids it has processed
    closed: dict[str, bytes]  # its closed steps among those named (Step JSON), by id


class Batch(NamedTuple):
    """Runs loaded together, at Redis's time `now`."""

    now: int
    runs: dict[RunRef, Loaded]
    subscriptions_version: bytes  # changes whenever a webhook subscription changes


@dataclass(frozen=True, slots=True)
class Claim:
    """Runs popped from the ready set, each with when it became ready (ms, Redis TIME)."""

    runs: dict[RunRef, int]
    now: int
    wake_wanted: bool  # runs are left and no wake-up job is queued: enqueue one for idle workers


class Store:
    def __init__(self, redis: Redis, retention: int, recover_after_ms: int = 10_000) -> None:
        self.redis = redis
        self.retention = retention
        self.recover_after_ms = recover_after_ms
        self._commit = lua.register(redis, "commit")
        self._publish = lua.register(redis, "publish")
        self._claim = lua.register(redis, "claim")
        self._ready = lua.register(redis, "ready")
        self._prune = lua.register(redis, "prune")

    # --- intake ------------------------------------------------------------------------

    def append(self, inboxes: dict[RunRef, list[bytes]]) -> bool:
        """Queue events on their runs' inboxes, mark the runs ready and record each run's account
        among the owners of its run id, in one script; True when no wake-up job is queued yet, so
        the caller must enqueue one."""
        args: list[Any] = [self.recover_after_ms, WAKE_TTL_MS]
        script_keys = [keys.TIMERS, keys.READY, keys.WAKE, keys.QUEUED]
        for run, items in inboxes.items():
            account, run_id = keys.parts(run)
            args.extend((run, keys.run_timer(run), account, len(items), *items))
            script_keys.extend((keys.inbox(run), keys.owners(run_id)))
        return bool(self._publish(keys=script_keys, args=args))

    def owners(self, run_ids: Iterable[str], chunk: int = 500) -> dict[str, set[str]]:
        """The accounts holding a run of each of these ids (an empty set: none)."""
        ids = list(run_ids)
        found: dict[str, set[str]] = {}
        for start in range(0, len(ids), chunk):
            pipe = self.redis.pipeline(transaction=False)
            for run_id in ids[start : start + chunk]:
                pipe.smembers(keys.owners(run_id))
            for run_id, members in zip(ids[start : start + chunk], pipe.execute(), strict=True):
                found[run_id] = {as_text(m) for m in members}
        return found

    def claim_ready(self, limit: int, *, wake_consumed: bool, fewest: int = 1, share: int = 1) -> "Claim":
        """Pop the runs that have waited longest for a worker: 1/`share` of those waiting, at least
        `fewest` and at most `limit`. `wake_consumed`: a wake-up job starts, so the next publish
        must enqueue another one."""
        args = [limit, int(wake_consumed), WAKE_TTL_MS, fewest, share]
        reply = self._ready(keys=[keys.READY, keys.WAKE], args=args)
        wake, now, rest = int(reply[0]), int(reply[1]), reply[2:]
        runs = {RunRef(as_text(rest[i])): int(float(rest[i + 1])) for i in range(0, len(rest), 2)}
        return Claim(runs, now, wake_wanted=bool(wake))

    def make_ready(self, runs: Sequence[RunRef]) -> None:
        """Put runs back in the ready set (keeping an earlier place), for a turn that could not finish."""
        if runs:
            self.redis.zadd(keys.READY, dict.fromkeys(runs, self.now_ms()), nx=True)

    def claim_due_at(
        self, limit: int = 200, lease_ms: int | None = None, timers: str = keys.TIMERS
    ) -> tuple[int, list[tuple[str, int]]]:
        """Redis's time and the due timer members with their due times (ms), each pushed back by a lease."""
        lease = self.recover_after_ms if lease_ms is None else lease_ms
        reply = self._claim(keys=[timers], args=[lease, limit])
        rest = reply[1:]
        return int(reply[0]), [(as_text(rest[i]), int(float(rest[i + 1]))) for i in range(0, len(rest), 2)]

    def prune_expired(self, limit: int = 500) -> int:
        """Take finished runs whose keys have expired out of the runs indexes; how many expiries
        were due (`limit`: there may be more)."""
        prefixes = [
            keys.RUN_PREFIX,
            keys.TOMBSTONE_PREFIX,
            keys.INBOX_PREFIX,
            keys.OWNERS_PREFIX,
            keys.ACCOUNT_RUNS_PREFIX,
        ]
        return int(self._prune(keys=[keys.EXPIRIES, keys.RUNS], args=[limit, *prefixes]))

    # --- the write path ----------------------------------------------------------------

    def now_ms(self) -> int:
        """Redis's clock, so every worker stamps by the same time."""
        return ms(self.redis.time())

    def load(self, runs: Sequence[RunRef], limit: int) -> Batch:
        """Each run's document, version, inbox head (up to `limit`) and held events, Redis's time,
        and the version of the webhook subscriptions."""
        pipe = self.redis.pipeline(transaction=False)
        pipe.time()
        pipe.get(keys.SUBSCRIPTIONS_VERSION)
        for run in runs:
            pipe.hmget(keys.run(run), "v", "d")
            pipe.get(keys.tombstone(run))
            pipe.lrange(keys.inbox(run), 0, limit - 1)
            pipe.get(keys.held(run))
        replies = pipe.execute()
        loaded: dict[RunRef, Loaded] = {}
        for index, run in enumerate(runs):
            (version, document), tomb, inbox, held = replies[2 + 4 * index : 6 + 4 * index]
            loaded[run] = Loaded(run, int(version or 0), document, tomb, inbox, held)
        return Batch(ms(replies[0]), loaded, replies[1] or b"")

    def known(self, named: dict[RunRef, tuple[list[str], list[str]]]) -> dict[RunRef, Known]:
        """For each run, (event ids, step ids) its queued events name: which of those events it has
        already processed, and which of those steps it holds closed. One round trip."""
        pipe = self.redis.pipeline(transaction=False)
        for run, (event_ids, step_ids) in named.items():
            if event_ids:
                pipe.smismember(keys.seen(run), event_ids)
            if step_ids:
                pipe.hmget(keys.steps(run), step_ids)
        replies = iter(pipe.execute() if len(pipe) else [])
        known: dict[RunRef, Known] = {}
        for run, (event_ids, step_ids) in named.items():
            flags = next(replies) if event_ids else []
            steps = next(replies) if step_ids else []
            seen = frozenset(i for i, flag in zip(event_ids, flags, strict=True) if flag)
            closed = {i: step for i, step in zip(step_ids, steps, strict=True) if step is not None}
            known[run] = Known(seen, closed)
        return known

    def pack(self, commit: Commit) -> Packed:
        """A commit's script arguments, built now (the caller catches what one run's data may
        raise), so that `commit` only sends them."""
        return pack(commit, retention=self.retention, recover_after_ms=self.recover_after_ms)

    def commit(self, packed: Sequence[Packed]) -> list[bool]:
        """Write each run's commit atomically; False where another worker got there first."""
        return [reply != lua.CONFLICT for reply in lua.run_all(self.redis, self._commit, packed)]

    def reject_orphans(self, records: Iterable[bytes], counters: dict[str, int]) -> None:
        """Rejected things that belong to no run (a refused job), with their counts."""
        pipe = self.redis.pipeline(transaction=True)
        for record in records:
            pipe.rpush(keys.REJECTED, record)
        for name, count in counters.items():
            pipe.hincrby(keys.STATS, name, count)
        pipe.execute()

    # --- reads -------------------------------------------------------------------------

    def run_of_step(self, account: str, step_id: str) -> RunRef | None:
        """The run of `account` holding step `step_id`, from the step index."""
        run = self.redis.get(keys.step_index(account, step_id))
        return None if run is None else RunRef(as_text(run))

    def get(self, run: RunRef) -> RunState | None:
        """The whole run: its document with every step, closed ones included, in creation order."""
        return self.get_many([run]).get(run)

    def document(self, run: RunRef) -> RunState | None:
        """The run and its open steps only: what a check of the run, or of its deadlines, needs."""
        document = self.redis.hget(keys.run(run), "d")
        return None if document is None else RunState.model_validate_json(document)

    def step_listing(self, run: RunRef) -> tuple[RunState | None, list[str]]:
        """Every step id of the run in creation order, and its document read just after them: each
        id is then a step the document holds open or one closed before it was read (closed steps
        are never taken back), so `steps` finds it. The other way round, a step created between the
        two reads would be listed and found nowhere. One round trip."""
        pipe = self.redis.pipeline(transaction=False)
        pipe.get(keys.step_order(run))  # first: a pipeline's commands run in order
        pipe.hget(keys.run(run), "d")
        order, document = pipe.execute()
        state = None if document is None else RunState.model_validate_json(document)
        return state, step_ids(order)

    def steps(self, run: RunRef, document: RunState, ids: Sequence[str]) -> dict[str, Step]:
        """These steps of the run as of its `document` (read before): the open ones from it, the
        others read among its closed steps (a closed step changes no more, but for late usage). An
        id of neither is left out."""
        found = {i: document.steps[i] for i in ids if i in document.steps}
        wanted = [i for i in ids if i not in found]
        stored = self.redis.hmget(keys.steps(run), wanted) if wanted else []
        found |= {i: Step.model_validate_json(step) for i, step in zip(wanted, stored, strict=True) if step is not None}
        return {i: found[i] for i in ids if i in found}

    def holding(self, run_id: str) -> set[str]:
        """The accounts with a stored run of this id (a deleted or expired one no longer counts)."""
        accounts = sorted(self.owners([run_id])[run_id])
        pipe = self.redis.pipeline(transaction=False)
        for account in accounts:
            pipe.hexists(keys.run(keys.ref(account, run_id)), "d")
        return {account for account, stored in zip(accounts, pipe.execute(), strict=True) if stored}

    def history(self, run: RunRef) -> list[Transition]:
        return [Transition.model_validate_json(item) for item in self.redis.lrange(keys.history(run), 0, -1)]

    def runs(
        self,
        chunk: int = 500,
        after: RunRef | None = None,
        *,
        account: str | None = None,
        newest_first: bool = False,
        whole: bool = True,
    ) -> Iterator[RunState]:
        """Every stored run in creation order, or newest first (`after`: those listed after that
        run in that order; `account`: only its runs, read from its own index, so that a small
        account never pays for the others'); runs that have expired are pruned from the indexes
        on the way. Not `whole`: each run with its open steps only (`get_many` reads the whole
        of those a caller keeps)."""
        redis = self.redis
        index = keys.RUNS if account is None else keys.account_runs(account)
        rank_of, runs_in = (redis.zrevrank, redis.zrevrange) if newest_first else (redis.zrank, redis.zrange)
        rank = rank_of(index, after) if after is not None else None
        start = 0 if rank is None else int(cast(int, rank)) + 1
        while listed := [RunRef(as_text(run)) for run in runs_in(index, start, start + chunk - 1)]:
            found = self.get_many(listed) if whole else self._documents(listed)
            gone = [run for run in listed if run not in found]
            if gone:
                self._unlist(gone)
            start += chunk - len(gone)
            yield from found.values()

    def _unlist(self, gone: list[RunRef]) -> None:
        """Take runs that are no more out of the runs index and their accounts' indexes."""
        by_account: dict[str, list[RunRef]] = {}
        for run in gone:
            by_account.setdefault(keys.parts(run)[0], []).append(run)
        pipe = self.redis.pipeline(transaction=False)
        pipe.zrem(keys.RUNS, *gone)
        for account, runs in by_account.items():
            pipe.zrem(keys.account_runs(account), *runs)
        pipe.execute()

    def _documents(self, runs: list[RunRef]) -> dict[RunRef, RunState]:
        pipe = self.redis.pipeline(transaction=False)
        for run in runs:
            pipe.hget(keys.run(run), "d")
        documents = pipe.execute() if runs else []
        return {
            run: RunState.model_validate_json(document)
            for run, document in zip(runs, documents, strict=True)
            if document is not None
        }

    def get_many(self, runs: list[RunRef]) -> dict[RunRef, RunState]:
        """The stored runs among these, whole, in the order given. A run's document and closed
        steps are read between two reads of its version, and read again if a commit fell between
        (a transaction would do it in one, but a full Redis refuses reads inside one); the last
        attempt's read stands, whatever fell between."""
        found: dict[RunRef, RunState] = {}
        asked = runs
        for attempt in range(1, READ_ATTEMPTS + 1):
            if not asked:
                break
            pipe = self.redis.pipeline(transaction=False)
            for run in asked:
                pipe.hmget(keys.run(run), "v", "d")
                pipe.hgetall(keys.steps(run))
                pipe.get(keys.step_order(run))
                pipe.hget(keys.run(run), "v")
            replies = pipe.execute()
            moved = []
            for index, run in enumerate(asked):
                (version, document), closed, order, after = replies[4 * index : 4 * index + 4]
                if version != after and attempt < READ_ATTEMPTS:
                    moved.append(run)
                elif document is not None:
                    found[run] = whole_state(document, closed, step_ids(order))
            asked = moved
        return {run: found[run] for run in runs if run in found}

    def timers(self, chunk: int = 500) -> Iterator[tuple[str, int]]:
        """Timer members with their due times (ms), soonest first."""
        start = 0
        while entries := list(self.redis.zrange(keys.TIMERS, start, start + chunk - 1, withscores=True)):
            for member, score in cast(list[tuple[bytes, float]], entries):
                yield as_text(member), int(score)
            start += chunk

    def rejected(self) -> Iterator[dict[str, Any]]:
        for item in self.redis.lrange(keys.REJECTED, 0, -1):
            yield orjson.loads(item)

    def stats(self) -> dict[str, int]:
        return {as_text(name): int(value) for name, value in self.redis.hgetall(keys.STATS).items()}


def step_ids(order: bytes | None) -> list[str]:
    """The step ids of a run's order key (`keys.step_order`), in creation order."""
    return order.decode().split("\n")[:-1] if order else []


def whole_state(document: bytes, closed: dict[bytes, bytes], order: list[str]) -> RunState:
    """A run from its document (the run, its open steps) and its closed steps, the steps in
    creation order."""
    state = RunState.model_validate_json(document)
    if not closed:
        return state
    open_steps = state.steps
    steps = {}
    for step_id in order:
        found = open_steps.get(step_id)
        if found is None:
            stored = closed.get(step_id.encode())
            if stored is None:  # created after the document was read (a read's last attempt)
                continue
            found = Step.model_validate_json(stored)
        steps[step_id] = found
    return evolve(state, {"steps": steps})
