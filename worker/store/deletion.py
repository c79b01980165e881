"""Delete a run for good: `runstate delete run` and `DELETE /v1/runs/{id}`.

One Lua script (`lua/delete.lua`) removes the run's document (its open steps inside), its closed
steps and their order, history, seen
event ids, inbox (and its count in the queue depth), held events, its step index entries, its
members in the runs indexes (all runs, and its account's) and the ready runs, and its timer,
and leaves the tombstone, so that late events stay stale (the run stays in the expiries until
its tombstone goes, to leave the owners of its run id then). Like every commit it is a
compare-and-set on the run's version, and it moves the version on (from the same counter): a
worker that read the run before the delete fails its own compare-and-set and then reads the
tombstone, so no drain in flight can bring the run back.
"""

import structlog
from redis import Redis

from worker.store import keys, lua
from worker.store.keys import RunRef
from worker.store.runs import step_ids

log = structlog.get_logger("runstate.deletion")

TOMBSTONE = "deleted"  # the tombstone of a deleted run, whatever its status was
ATTEMPTS = 50  # reads and compare-and-sets before giving up on a run that workers keep changing


class DeleteContended(RuntimeError):
    """Raised when every one of `attempts` compare-and-sets lost to a worker committing the run."""

    def __init__(self, run_id: str, attempts: int) -> None:
        super().__init__(f"run {run_id!r} changed under each of {attempts} attempts to delete it")
        self.run_id = run_id  # the id alone: the message may answer the run's own account
        self.attempts = attempts


class Deleter:
    def __init__(self, redis: Redis, retention: int) -> None:
        self.redis = redis
        self.tombstone_seconds = 2 * retention  # as long as a finished run's tombstone
        self._delete = lua.register(redis, "delete")

    def delete(self, run: RunRef) -> bool:
        """Delete the run; False when there is none."""
        for _ in range(ATTEMPTS):
            pipe = self.redis.pipeline(transaction=True)
            pipe.hmget(keys.run(run), "v", "d")
            pipe.get(keys.step_order(run))
            (version, document), order = pipe.execute()
            if document is None:
                return False
            index = [keys.step_index(keys.parts(run)[0], step_id) for step_id in step_ids(order)]
            args: list[str | int] = [int(version or 0), run, keys.run_timer(run), self.tombstone_seconds, TOMBSTONE]
            reply = int(self._delete(keys=_keys(run) + index, args=args))
            if reply > 0:
                account, run_id = keys.parts(run)
                log.info("run.deleted", account=account, run_id=run_id, version=reply)
            if reply != lua.CONFLICT:
                return reply > 0
        raise DeleteContended(keys.parts(run)[1], ATTEMPTS)


def was_deleted(redis: Redis, run: RunRef) -> bool:
    """Whether the run was deleted (its tombstone says so, for twice RUNSTATE_RETENTION). The
    tombstone is the run's, (account, run id): another account's deleted run of that id is not."""
    return redis.get(keys.tombstone(run)) == TOMBSTONE.encode()


def _keys(run: RunRef) -> list[str]:
    return [
        keys.run(run),
        keys.history(run),
        keys.seen(run),
        keys.tombstone(run),
        keys.inbox(run),
        keys.held(run),
        keys.RUNS,
        keys.TIMERS,
        keys.VERSIONS,
        keys.READY,
        keys.EXPIRIES,
        keys.QUEUED,
        keys.account_runs(keys.parts(run)[0]),
        keys.steps(run),
        keys.step_order(run),
    ]
