"""What the drain needs from the process that runs it, as Protocols: the runtime fills them
(docs/architecture.md, "The dependency rule"), so nothing here imports upwards."""

from typing import Protocol

from redis import Redis

from worker.drain.metrics import Recorder
from worker.drain.processor import Processor
from worker.store.runs import Store


class Waker(Protocol):
    """Wakes an idle worker: queues one wake-up job unless one is queued already."""

    def wake(self) -> object: ...


class DrainParts(Protocol):
    """The connection and the objects a turn, a sweep and a job work with."""

    @property
    def redis(self) -> Redis: ...

    @property
    def store(self) -> Store: ...

    @property
    def processor(self) -> Processor: ...

    @property
    def publisher(self) -> Waker: ...

    @property
    def recorder(self) -> Recorder: ...
