"""`Sender`: publishes an adapter's events from a background thread, in batches, and sends
`run.heartbeat` for the runs still open, so an agent never waits on runstate.

A framework calls its adapter on the agent's own thread, often between two model calls:
an HTTP request there would add its latency to every step. The adapter hands events to
`send` (a queue put) and the sender's thread publishes what has queued up, in order, with
the client's own retries. What runstate refuses, or never answers after every retry, is
logged and dropped: a tracing hiccup must never fail the agent.
"""

import logging
import queue
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from runstate import events
from runstate.client import Client
from runstate.errors import ClientError, EventsRefused

log = logging.getLogger("runstate.integrations")

MAX_BATCH = 500  # events in one publish
Task = Callable[[], None]  # work to run on the sender's thread, in order with the events


class Sender:
    """Queues events for `client` and publishes them from its own daemon thread.

    `heartbeat_every` (seconds): while a run is open (`opened` … `closed`), a `run.heartbeat`
    for it is queued at that interval, so runstate's inactivity timeout sees the agent alive
    during a long model or tool call (a third of the timeout is a good value)."""

    def __init__(self, client: Client, *, heartbeat_every: float | None = None) -> None:
        if heartbeat_every is not None and heartbeat_every <= 0:
            raise ValueError(f"heartbeat_every is {heartbeat_every}; it must be a positive number of seconds")
        self._client = client
        self._queue: queue.SimpleQueue[Mapping[str, Any] | Task | None] = queue.SimpleQueue()
        self._lock = threading.Condition()
        self._pending = 0  # items queued and not yet handled; flush waits for 0
        self._open: set[str] = set()  # runs that get heartbeats
        self._stopped = threading.Event()
        self._thread = threading.Thread(target=self._publish_forever, name="runstate-sender", daemon=True)
        self._thread.start()
        self._beats: threading.Thread | None = None
        if heartbeat_every is not None:
            self._beats = threading.Thread(
                target=self._beat_forever, args=(heartbeat_every,), name="runstate-heartbeats", daemon=True
            )
            self._beats.start()

    # --- what adapters call -------------------------------------------------------------

    def send(self, *events: Mapping[str, Any]) -> None:
        with self._lock:
            self._put(events)

    def call(self, task: Task) -> None:
        """Run `task` on the sender's thread after the events queued before it were published
        (a lookup through runstate that must not block the agent)."""
        with self._lock:
            self._put([task])

    def opened(self, run_id: str, *first: Mapping[str, Any]) -> None:
        """Queue `first` and send heartbeats for the run from now on."""
        with self._lock:
            self._open.add(run_id)
            self._put(first)

    def closed(self, run_id: str, *last: Mapping[str, Any]) -> None:
        """Stop the run's heartbeats and queue `last`: no heartbeat is queued after it."""
        with self._lock:
            self._open.discard(run_id)
            self._put(last)

    def flush(self, timeout: float | None = None) -> bool:
        """Wait until everything queued so far was published (or dropped); False on timeout."""
        with self._lock:
            return self._lock.wait_for(lambda: self._pending == 0, timeout)

    def shutdown(self, timeout: float | None = 30.0) -> None:
        """Publish what is queued, then stop both threads."""
        self._stopped.set()
        if self._beats is not None:
            self._beats.join(timeout)  # first, so that no heartbeat is queued behind the end
        self._queue.put(None)
        self._thread.join(timeout)

    # --- the threads ----------------------------------------------------------------------

    def _put(self, items: Iterable[Mapping[str, Any] | Task]) -> None:
        for item in items:
            self._pending += 1
            self._queue.put(item)

    def _beat_forever(self, every: float) -> None:
        while not self._stopped.wait(every):
            with self._lock:
                self._put([events.run_heartbeat(run_id) for run_id in sorted(self._open)])

    def _publish_forever(self) -> None:
        while True:
            first = self._queue.get()
            if first is None:
                return
            batch = [first]
            while len(batch) < MAX_BATCH:  # whatever queued up meanwhile goes in the same request
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    break
                if item is None:
                    self._queue.put(None)  # stop after this batch
                    break
                batch.append(item)
            self._handle(batch)
            with self._lock:
                self._pending -= len(batch)
                self._lock.notify_all()

    def _handle(self, batch: list[Mapping[str, Any] | Task]) -> None:
        run: list[Mapping[str, Any]] = []
        for item in batch:
            if callable(item):
                self._publish(run)
                run = []
                self._run(item)
            else:
                run.append(item)
        self._publish(run)

    def _publish(self, batch: list[Mapping[str, Any]]) -> None:
        if not batch:
            return
        started = time.monotonic()
        try:
            self._client.publish(batch)
        except EventsRefused as refused:
            for refusal in refused.refusals:
                log.warning("runstate.event_refused event_id=%s reason=%r", refusal.event_id, refusal.reason)
        except ClientError as failed:
            log.error("runstate.publish_failed events=%d error=%r", len(batch), str(failed))
        log.debug("runstate.published events=%d seconds=%.3f", len(batch), time.monotonic() - started)

    @staticmethod
    def _run(task: Task) -> None:
        try:
            task()
        except Exception:  # a failed lookup must not stop the sender; the task decides its fallback
            log.exception("runstate.task_failed")
