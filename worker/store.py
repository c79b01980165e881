"""Runs, steps, history, rejected events and counters in Redis.

The only write path for a run is `commit`: one Lua compare-and-set on the run's version
that also writes its history, the seen event ids, the counters and any rejected records.
Two workers touching one run cannot lose an update (the loser reloads and reapplies);
a process that dies mid-batch leaves either the whole commit or none of it.
"""

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from importlib import resources
from typing import Any

import orjson
from redis import Redis

from statemachine.models import RunState, Tombstone, Transition
from worker import keys

_COMMIT = resources.files("worker").joinpath("lua/commit.lua").read_text()
CONFLICT = -1


@dataclass(frozen=True, slots=True)
class Loaded:
    """A run as read before applying a batch to it."""

    state: RunState | Tombstone | None
    version: int
    seen: frozenset[str]  # the batch's event ids this run has already processed


@dataclass(slots=True)
class Commit:
    """Everything one batch does to one run, written at once."""

    run_id: str
    expected_version: int
    state: RunState | None = None  # None: the document is unchanged
    history: list[Transition] = field(default_factory=list)
    seen: list[str] = field(default_factory=list)
    counters: dict[str, int] = field(default_factory=dict)
    rejected: list[bytes] = field(default_factory=list)
    finished: bool = False


class Store:
    def __init__(self, redis: Redis, retention: int) -> None:
        self.redis = redis
        self.retention = retention
        self._commit = redis.register_script(_COMMIT)

    # --- the write path ----------------------------------------------------------------

    def now_ms(self) -> int:
        """Redis's clock, so every worker stamps by the same time."""
        seconds, micros = self.redis.time()
        return int(seconds) * 1000 + int(micros) // 1000

    def load(self, event_ids: dict[str, Sequence[str]]) -> tuple[int, dict[str, Loaded]]:
        """Each run's state, version and already-seen ids, plus Redis's time, in one round trip."""
        pipe = self.redis.pipeline(transaction=False)
        pipe.time()
        for run_id, ids in event_ids.items():
            pipe.hmget(keys.run(run_id), "v", "d")
            pipe.get(keys.tombstone(run_id))
            pipe.smismember(keys.seen(run_id), list(ids))
        replies = pipe.execute()
        seconds, micros = replies[0]
        loaded: dict[str, Loaded] = {}
        for index, (run_id, ids) in enumerate(event_ids.items()):
            (version, document), tomb, flags = replies[1 + 3 * index : 4 + 3 * index]
            state: RunState | Tombstone | None = None
            if document is not None:
                state = RunState.model_validate_json(document)
            elif tomb is not None:
                state = Tombstone(run_id, tomb.decode())
            seen = frozenset(i for i, flag in zip(ids, flags, strict=True) if flag)
            loaded[run_id] = Loaded(state, int(version or 0), seen)
        return int(seconds) * 1000 + int(micros) // 1000, loaded

    def commit(self, commits: Sequence[Commit]) -> list[bool]:
        """Write each run's commit atomically; False where another worker got there first."""
        pipe = self.redis.pipeline(transaction=False)
        for commit in commits:
            self._commit(keys=self._keys(commit.run_id), args=self._args(commit), client=pipe)
        return [reply != CONFLICT for reply in pipe.execute()]

    def reject_orphans(self, records: Iterable[bytes], counters: dict[str, int]) -> None:
        """Rejected events that belong to no run (they could not be read), with their counts."""
        pipe = self.redis.pipeline(transaction=True)
        for record in records:
            pipe.rpush(keys.REJECTED, record)
        for name, count in counters.items():
            pipe.hincrby(keys.STATS, name, count)
        pipe.execute()

    @staticmethod
    def _keys(run_id: str) -> list[str]:
        return [
            keys.run(run_id),
            keys.history(run_id),
            keys.seen(run_id),
            keys.tombstone(run_id),
            keys.RUNS,
            keys.STATS,
            keys.REJECTED,
        ]

    def _args(self, commit: Commit) -> list[Any]:
        state = commit.state
        document = state.model_dump_json(exclude_defaults=True, by_alias=True) if state is not None else ""
        created = state.run.created_at if state is not None else 0
        status = state.run.status.value if state is not None else ""
        counters = [item for pair in commit.counters.items() for item in pair]
        counts = f"{len(commit.history)},{len(commit.seen)},{len(commit.counters)},{len(commit.rejected)}"
        return [
            commit.expected_version,
            document,
            created,
            commit.run_id,
            self.retention if commit.finished else 0,
            status,
            counts,
            *(t.model_dump_json(by_alias=True, exclude_defaults=True) for t in commit.history),
            *commit.seen,
            *counters,
            *commit.rejected,
        ]

    # --- reads -------------------------------------------------------------------------

    def get(self, run_id: str) -> RunState | None:
        document = self.redis.hget(keys.run(run_id), "d")
        return None if document is None else RunState.model_validate_json(document)

    def history(self, run_id: str) -> list[Transition]:
        return [Transition.model_validate_json(item) for item in self.redis.lrange(keys.history(run_id), 0, -1)]

    def runs(self, chunk: int = 500) -> Iterator[RunState]:
        """Every stored run in creation order; ids whose run has expired are pruned on the way."""
        start = 0
        while ids := [_text(run_id) for run_id in self.redis.zrange(keys.RUNS, start, start + chunk - 1)]:
            documents = self._documents(ids)
            gone = [run_id for run_id, document in zip(ids, documents, strict=True) if document is None]
            if gone:
                self.redis.zrem(keys.RUNS, *gone)
            start += chunk - len(gone)
            yield from (RunState.model_validate_json(d) for d in documents if d is not None)

    def _documents(self, ids: list[str]) -> list[bytes | None]:
        pipe = self.redis.pipeline(transaction=False)
        for run_id in ids:
            pipe.hget(keys.run(run_id), "d")
        return list(pipe.execute())

    def rejected(self) -> Iterator[dict[str, Any]]:
        for item in self.redis.lrange(keys.REJECTED, 0, -1):
            yield orjson.loads(item)

    def stats(self) -> dict[str, int]:
        return {_text(name): int(value) for name, value in self.redis.hgetall(keys.STATS).items()}


def _text(value: object) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)
