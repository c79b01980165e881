"""`GET /metrics`: Prometheus text, read from Redis at scrape time, so it reports every worker.

Counters come from the outcome counters the commits write, histograms from what each worker's
sweeper flushes (see `metrics`), gauges from the queues themselves. No token is needed.
"""

from collections.abc import Iterator
from typing import Any

from fastapi import APIRouter, Request, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector, CollectorRegistry

from statemachine.events import EventType
from statemachine.status import Outcome
from worker.drain.metrics import APPLY_LATENCY, LATENCY_BUCKETS, TIMER_LAG
from worker.intake.queue import make_queue
from worker.runtime import Runtime
from worker.store import keys
from worker.store.outbox import WEBHOOK_COUNTER, Deliveries
from worker.store.replies import as_text

router = APIRouter()

_COUNTERS = {  # STATS field -> (metric name, help)
    "event.rejected": ("runstate_invalid_events", "Queued entries a worker refused as invalid events."),
    "job.poisoned": ("runstate_poisoned_jobs", "Queue entries refused as not runstate's own jobs."),
    "late_usage": ("runstate_late_usage", "Stale step events whose usage was still added."),
    "deadlines": ("runstate_deadlines_fired", "Run timeouts and step expiries fired."),
    "inactivity_timeouts": ("runstate_inactivity_timeouts", "Runs timed out for silence (among the deadlines)."),
    "gaps": ("runstate_sequence_gaps", "Sequence gaps skipped after the reorder window."),
    "clock_skew": (
        "runstate_clock_skew",
        "Events whose occurred_at was ahead of Redis time beyond RUNSTATE_CLOCK_SKEW.",
    ),
}
_HISTOGRAMS = {
    APPLY_LATENCY: ("runstate_apply_latency_seconds", "Seconds from publish to applied, per event."),
    TIMER_LAG: ("runstate_timer_lag_seconds", "Seconds from a timer's due time to its claim by a sweep."),
}


class RedisCollector(Collector):
    def __init__(self, runtime: Runtime) -> None:
        self.runtime = runtime
        self.queue_key = make_queue(runtime.redis, runtime.settings.queue_name).key

    def collect(self) -> Iterator[Metric]:
        redis = self.runtime.redis
        pipe = redis.pipeline(transaction=False)
        pipe.hgetall(keys.STATS)
        pipe.hgetall(keys.METRICS)
        pipe.time()
        pipe.zrange(keys.READY, 0, 0, withscores=True)
        for command, key in _GAUGE_READS:
            getattr(pipe, command)(key)
        pipe.llen(self.queue_key)
        stats_raw, metrics_raw, time_reply, oldest, *sizes, jobs = pipe.execute()
        stats = {as_text(k): int(v) for k, v in stats_raw.items()}
        yield from _events(stats)
        yield from _counters(stats)
        yield from _histograms({as_text(k): float(v) for k, v in metrics_raw.items()})
        now = int(time_reply[0]) + int(time_reply[1]) / 1e6
        age = max(0.0, now - oldest[0][1] / 1000) if oldest else 0.0
        yield _gauge("runstate_ready_oldest_age_seconds", "Seconds the longest-waiting ready run has waited.", age)
        for (name, help_text), size in zip(_GAUGES, sizes, strict=True):
            yield _gauge(name, help_text, max(0, int(size or 0)))
        yield _gauge("runstate_queued_jobs", "Wake-up jobs waiting in RQ's queue.", int(jobs))
        pending = Deliveries(redis, self.runtime.settings.retention).pending()
        yield _gauge("runstate_webhook_deliveries_pending", "Webhook deliveries waiting for an attempt.", pending)


_GAUGE_READS = [
    ("zcard", keys.READY),
    ("get", keys.QUEUED),
    ("zcard", keys.TIMERS),
    ("llen", keys.DEAD_LETTERS),
    ("llen", keys.REJECTED),
    ("zcard", keys.RUNS),
]
_GAUGES = [
    ("runstate_ready_runs", "Runs with queued events no worker has claimed yet."),
    ("runstate_queued_events", "Events published and not yet taken from their inboxes."),
    ("runstate_timers", "Timers (deadlines, reorder windows, recovery) in the timer index."),
    ("runstate_webhook_dead_letters", "Webhook deliveries dead-lettered and not replayed."),
    ("runstate_rejected_events", "Rejected-event records kept (runstate rejected)."),
    ("runstate_runs", "Runs in the runs index."),
]


def _gauge(name: str, help_text: str, value: float) -> GaugeMetricFamily:
    return GaugeMetricFamily(name, help_text, value=value)


def _events(stats: dict[str, int]) -> Iterator[Metric]:
    events = CounterMetricFamily(
        "runstate_events", "Events processed, by type and outcome.", labels=["type", "outcome"]
    )
    for event_type in EventType:
        for outcome in Outcome:
            events.add_metric([event_type.value, outcome.value], stats.get(f"{event_type}:{outcome}", 0))
    yield events
    attempts = CounterMetricFamily("runstate_webhook_attempts", "Webhook attempts by outcome.", labels=["outcome"])
    for attempt in ("delivered", "failed", "gone"):
        attempts.add_metric([attempt], stats.get(f"{WEBHOOK_COUNTER}{attempt}", 0))
    yield attempts


def _counters(stats: dict[str, int]) -> Iterator[Metric]:
    for field, (name, help_text) in _COUNTERS.items():
        yield CounterMetricFamily(name, help_text, value=stats.get(field, 0))


def _histograms(raw: dict[str, float]) -> Iterator[Metric]:
    for key, (name, help_text) in _HISTOGRAMS.items():
        cumulative, buckets = 0.0, []
        for bound in (*LATENCY_BUCKETS, "+Inf"):
            cumulative += raw.get(f"{key}:le:{bound}", 0)
            buckets.append((str(bound), cumulative))
        yield HistogramMetricFamily(name, help_text, buckets=buckets, sum_value=raw.get(f"{key}:sum", 0.0))


def registry(runtime: Runtime) -> CollectorRegistry:
    made = CollectorRegistry(auto_describe=False)
    made.register(RedisCollector(runtime))
    return made


@router.get("/metrics", response_class=Response, responses={200: {"content": {CONTENT_TYPE_LATEST: {}}}})
def metrics(request: Request) -> Response:
    """Prometheus metrics of every worker, read from Redis (no token needed)."""
    made: Any = request.app.state.metrics
    return Response(generate_latest(made), media_type=CONTENT_TYPE_LATEST)
