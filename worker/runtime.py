"""The process's settings and Redis connection, made once at the edge and handed down."""

from dataclasses import dataclass, field, replace
from functools import cached_property
from typing import TYPE_CHECKING

from redis import Redis

from worker.drain.metrics import Recorder
from worker.drain.prices import GenaiPrices
from worker.drain.processor import Processor
from worker.settings import Settings
from worker.store.connection import connect
from worker.store.runs import Store

if TYPE_CHECKING:
    from worker.intake.publisher import Publisher


@dataclass(frozen=True)
class Runtime:
    settings: Settings
    redis: Redis
    embedded: bool = False  # fakeredis in this process: `replay` with no REDIS_URL
    recorder: Recorder = field(default_factory=Recorder)  # this process's histograms, for /metrics

    @classmethod
    def connect(cls, settings: Settings, *, embedded_when_unset: bool = False) -> "Runtime":
        """Redis from REDIS_URL (or its default; a Sentinel URL names the primary); embedded
        fakeredis when asked and REDIS_URL is unset."""
        if embedded_when_unset and settings.redis_url is None:
            import fakeredis  # only here: it takes longer to import than the rest of a worker

            return cls(settings, fakeredis.FakeRedis(server=fakeredis.FakeServer()), embedded=True)
        return cls(settings, connect(settings))

    def with_own_connection(self) -> "Runtime":
        """The same settings and recorder on a connection of its own (short timeouts): for the sweeper
        thread, whose claims must not wait behind RQ's long blocking reads on the shared pool."""
        if self.embedded:
            return self
        redis = connect(self.settings, socket_timeout=10, socket_connect_timeout=5)
        return Runtime(self.settings, redis, recorder=self.recorder)

    @cached_property
    def store(self) -> Store:
        return Store(self.redis, self.settings.retention, int(self.settings.recover_after * 1000))

    @cached_property
    def publisher(self) -> "Publisher":
        from worker.intake.publisher import Publisher

        settings = self.settings
        acks = 0 if self.embedded else settings.replica_acks  # an embedded Redis has no replicas
        return Publisher(
            self.store,
            settings.queue_name,
            settings.batch_size,
            default_account=settings.default_account,
            replica_acks=acks,
            replica_ack_timeout=settings.replica_ack_timeout,
        )

    @cached_property
    def processor(self) -> Processor:
        window = int(self.settings.reorder_window * 1000)
        policy = self.settings.policy()
        if self.settings.prices:
            policy = replace(policy, pricer=GenaiPrices())
        return Processor(self.store, policy, window, recorder=self.recorder)
