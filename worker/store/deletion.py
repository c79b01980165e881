"""Delete a run for good: `runstate delete run` and `DELETE /v1/runs/{id}`.

One Lua script (`lua/delete.lua`) removes the run's document (its steps inside), history, seen
event ids, inbox (and its count in the queue depth), held events, its step index entries, its
members in the runs index,
the ready runs and the expiries, and its timer, and leaves the
tombstone, so that late events stay stale. Like every commit it is a compare-and-set on the
run's version, and it moves the version on (from the same counter): a worker that read the run
before the delete fails its own compare-and-set and then reads the tombstone, so no drain in
flight can bring the run back.
"""

import structlog
from redis import Redis

from statemachine.models import RunState
from worker.store import keys, lua

log = structlog.get_logger("runstate.deletion")

TOMBSTONE = "deleted"  # the tombstone of a deleted run, whatever its status was
ATTEMPTS = 50  # reads and compare-and-sets before giving up on a run that workers keep changing


class DeleteContended(RuntimeError):
    """Raised when every one of `attempts` compare-and-sets lost to a worker committing the run."""

    def __init__(self, run_id: str, attempts: int) -> None:
        super().__init__(f"run {run_id!r} changed under each of {attempts} attempts to delete it")
        self.run_id = run_id
        self.attempts = attempts


class Deleter:
    def __init__(self, redis: Redis, retention: int) -> None:
        self.redis = redis
        self.tombstone_seconds = 2 * retention  # as long as a finished run's tombstone
        self._delete = lua.register(redis, "delete")

    def delete(self, run_id: str, *, account: str | None = None) -> bool:
        """Delete the run; False when there is none, or (given `account`) none of that account's.

        The account is checked on the very version that is deleted: a run whose account a
        late `run.started` names in between is read and checked again.
        """
        for _ in range(ATTEMPTS):
            version, document = self.redis.hmget(keys.run(run_id), "v", "d")
            if document is None:
                return False
            state = RunState.model_validate_json(document)
            if account is not None and state.run.account_id != account:
                return False
            args: list[str | int] = [
                int(version or 0),
                run_id,
                keys.run_timer(run_id),
                self.tombstone_seconds,
                TOMBSTONE,
            ]
            reply = int(self._delete(keys=_keys(run_id) + _step_index(state), args=args))
            if reply > 0:
                log.info("run.deleted", run_id=run_id, version=reply)
            if reply != lua.CONFLICT:
                return reply > 0
        raise DeleteContended(run_id, ATTEMPTS)


def _step_index(state: RunState) -> list[str]:
    return [keys.step_index(state.run.account_id, step_id) for step_id in state.steps]


def was_deleted(redis: Redis, run_id: str) -> bool:
    """Whether the run was deleted (its tombstone says so, for twice RUNSTATE_RETENTION)."""
    return redis.get(keys.tombstone(run_id)) == TOMBSTONE.encode()


def _keys(run_id: str) -> list[str]:
    return [
        keys.run(run_id),
        keys.history(run_id),
        keys.seen(run_id),
        keys.tombstone(run_id),
        keys.inbox(run_id),
        keys.held(run_id),
        keys.RUNS,
        keys.TIMERS,
        keys.VERSIONS,
        keys.READY,
        keys.EXPIRIES,
        keys.QUEUED,
    ]
