"""Publish → applied latency at an offered rate, with one live `runstate worker`.

A publisher calls the Python API once per event at a steady rate (no batching on its side).
An observer in its own process learns when each commit lands from Redis keyspace
notifications on the run keys (`notify-keyspace-events Kh`), so the figure is what a reader
of Redis sees: from the publish call to the commit that applied the event. Runs are worked
in waves of 100, each run getting its next event 100 ms after the last, so a run has one
event in flight at a time and every notification after a publish belongs to that event.
"""

import os
import subprocess
import sys
import time
from pathlib import Path

import orjson
from redis import Redis

from benchmarks.common import PIN, percentile, pinned, run_events, start_runstate
from worker.runtime import Runtime
from worker.settings import Settings

WAVE = 100  # runs worked at once

_OBSERVE = """
import sys, time, orjson
from redis import Redis
r = Redis.from_url(sys.argv[1]); out = sys.argv[2]; until = time.time() + float(sys.argv[3])
p = r.pubsub(ignore_subscribe_messages=True); p.psubscribe("__keyspace@0__:runstate:run:*")
print("ready", flush=True)
seen = []
while time.time() < until:
    m = p.get_message(timeout=0.2)
    if m is not None:
        seen.append((m["channel"].decode().split("{", 1)[1][:-1].split("/", 1)[-1], time.time()))  # {account/run}
open(out, "wb").write(orjson.dumps(seen))
"""


def _schedule(events: int) -> list[bytes]:
    """Events in publish order: waves of WAVE runs, one event of each run in turn."""
    runs = events // 10
    by_run = run_events(runs)  # 10 events per run, run after run
    ordered: list[bytes] = []
    for wave in range(0, runs, WAVE):
        members = range(wave, min(runs, wave + WAVE))
        for k in range(10):
            ordered.extend(by_run[r * 10 + k] for r in members)
    return ordered


def measure(redis_url: str, rate: float, seconds: float, folder: Path) -> dict[str, float]:
    redis = Redis.from_url(redis_url)
    redis.flushdb()
    redis.config_set("notify-keyspace-events", "Kh")
    worker = start_runstate(["worker"], redis_url)
    seen_file = folder / "seen.json"
    observer = subprocess.Popen(
        pinned(0, [sys.executable, "-c", _OBSERVE, redis_url, str(seen_file), str(seconds + 8)]),
        stdout=subprocess.PIPE,
    )
    try:
        assert observer.stdout is not None
        observer.stdout.readline()  # subscribed
        time.sleep(2)  # the worker is up and listening
        published = _publish(redis_url, _schedule(int(rate * seconds)), rate)
        observer.wait(timeout=seconds + 30)
    finally:
        worker.terminate()
        worker.wait(timeout=30)
        redis.config_set("notify-keyspace-events", "")
    return _latencies(published, orjson.loads(seen_file.read_bytes()))


def _publish(redis_url: str, lines: list[bytes], rate: float) -> list[tuple[str, float]]:
    """Publish one event per call at `rate` from this process, kept off the worker's CPU;
    (run id, time of the call) per event."""
    publisher = Runtime(Settings(), Redis.from_url(redis_url)).publisher
    cpus = os.sched_getaffinity(0)
    if PIN:
        os.sched_setaffinity(0, {0})
    try:
        start = time.perf_counter()
        sent = []
        for n, line in enumerate(lines):
            pause = start + n / rate - time.perf_counter()
            if pause > 0:
                time.sleep(pause)
            at = time.time()
            publisher.publish_lines([line])
            sent.append((orjson.loads(line)["run_id"], at))
        return sent
    finally:
        os.sched_setaffinity(0, cpus)


def _latencies(published: list[tuple[str, float]], seen: list[tuple[str, float]]) -> dict[str, float]:
    """For each event, the first commit on its run after its publish call."""
    commits: dict[str, list[float]] = {}
    for run_id, at in seen:
        commits.setdefault(run_id, []).append(at)
    waits, missing = [], 0
    for run_id, at in published:
        later = next((c for c in commits.get(run_id, []) if c >= at), None)
        if later is None:
            missing += 1
        else:
            waits.append((later - at) * 1000)
    return {
        "events": len(published),
        "missing": missing,
        "p50_ms": percentile(waits, 0.50),
        "p99_ms": percentile(waits, 0.99),
        "max_ms": max(waits),
    }
