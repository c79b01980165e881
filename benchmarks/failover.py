"""The cost of RUNSTATE_REPLICA_ACKS: publish throughput with 1 against 0, in turn, on a private
primary with one replica (issue 17):

    python -m benchmarks.failover [--events 20000] [--rounds 3]

Each round publishes `--events` new events through the Python publisher (as `runstate publish`
and `POST /v1/events` do), once in batches of 100 events (an HTTP request's worth) and once
an event at a time, with acks 0 and 1 measured one after the other so a busy machine's drift
hits both. Medians of `--rounds`. What it costs is one WAIT (a round trip to the replica) per
publish call, so the smaller the batch the larger the share.
"""

import contextlib
import statistics
import subprocess
import time
from collections.abc import Iterator

import click
from redis import Redis

from benchmarks.common import free_port, pinned, redis_server, run_events
from worker.runtime import Runtime
from worker.settings import Settings


@contextlib.contextmanager
def replica_of(primary_url: str) -> Iterator[None]:
    """A replica of the primary, on CPU 1 beside the publisher; yields once it is in sync."""
    port, primary_port = free_port(), primary_url.rsplit(":", 1)[1].split("/")[0]
    argv = ["redis-server", "--port", str(port), "--save", "", "--appendonly", "no", "--bind", "127.0.0.1"]
    server = subprocess.Popen(pinned(1, [*argv, "--replicaof", "127.0.0.1", primary_port]), stdout=subprocess.DEVNULL)
    try:
        client = Redis(port=port)
        while True:
            with contextlib.suppress(Exception):
                if client.info("replication").get("master_link_status") == "up":
                    break
            time.sleep(0.05)
        yield
    finally:
        server.terminate()
        server.wait(timeout=10)


def publish_rate(redis_url: str, acks: int, events: int, batch: int, prefix: str) -> float:
    """Events/s publishing `events` new events in calls of `batch` lines."""
    runtime = Runtime(Settings(replica_acks=acks), Redis.from_url(redis_url))
    lines = [line.decode() for line in run_events(events // 10, prefix=prefix)]
    started = time.perf_counter()
    for start in range(0, len(lines), batch):
        runtime.publisher.publish_lines(lines[start : start + batch])
    rate = len(lines) / (time.perf_counter() - started)
    runtime.redis.flushdb()
    runtime.redis.close()
    return rate


@click.command()
@click.option("--events", default=20_000, show_default=True, help="Events published per measurement.")
@click.option("--rounds", default=3, show_default=True, help="Measurements of each, in turn; medians reported.")
def main(events: int, rounds: int) -> None:
    with redis_server() as url, replica_of(url):
        print("| batch | RUNSTATE_REPLICA_ACKS=0 | RUNSTATE_REPLICA_ACKS=1 | cost |")
        print("|---|---|---|---|")
        for batch in (100, 1):
            rates: dict[int, list[float]] = {0: [], 1: []}
            count = events if batch > 1 else events // 10
            for round_ in range(rounds):
                for acks in (0, 1):
                    rates[acks].append(publish_rate(url, acks, count, batch, f"f{batch}_{round_}_{acks}"))
            zero, one = statistics.median(rates[0]), statistics.median(rates[1])
            print(f"| {batch} | {zero:,.0f} events/s | {one:,.0f} events/s | {1 - one / zero:.0%} fewer |")


if __name__ == "__main__":
    main()
