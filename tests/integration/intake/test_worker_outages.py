"""A Redis fault at the very moment RQ dequeues: the worker waits it out and goes on, as for a
fault anywhere else in RQ's loop. RQ alone retries only a lost connection there, and quits with
exit 0 on anything else (a full Redis, a read-only replica), leaving a worker fewer."""

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
from rq import Queue

from tests.support.redis_servers import own_redis
from worker.drain import jobs
from worker.intake.outages import work_until_stopped
from worker.intake.queue import make_worker
from worker.runtime import Runtime
from worker.settings import Settings
from worker.store.keys import ref


class _FullAtDequeue(Queue):
    """Redis fills up between the worker's heartbeat and its dequeue, and is freed a moment later:
    the race a live worker lost when Redis filled up under it."""

    filled = False

    @classmethod
    def dequeue_any(cls, queues: Any, timeout: Any, connection: Any, **kwargs: Any) -> Any:
        if not cls.filled:
            cls.filled = True
            connection.config_set("maxmemory", 1)
            threading.Timer(0.3, connection.config_set, ("maxmemory", 0)).start()
        return super().dequeue_any(queues, timeout, connection=connection, **kwargs)


@pytest.fixture
def runtime(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Runtime]:
    with own_redis(tmp_path) as server:  # its own server: this one is made to fill up
        monkeypatch.setenv("REDIS_URL", server.url)
        made = Runtime.connect(Settings())
        yield made
        made.redis.close()


def test_a_worker_that_finds_redis_full_at_its_dequeue_waits_and_goes_on(runtime: Runtime) -> None:
    jobs.bind(runtime)
    event = {"id": "e1", "type": "run.started", "run_id": "r_full_at_dequeue"}
    assert runtime.publisher.publish_lines([orjson.dumps(event).decode()]).errors == []
    rq_worker: Any = make_worker(runtime.redis, runtime.settings.queue_name, runtime.store, commands=False)
    rq_worker.queue_class = _FullAtDequeue

    work_until_stopped(rq_worker, burst=True, logging_level="WARNING")  # burst: returns once the queue is empty

    assert _FullAtDequeue.filled
    state = runtime.store.get(ref("default", "r_full_at_dequeue"))
    assert state is not None
    assert state.run.status == "running"
