"""Workers SIGKILLed at random while they apply: what was lost, applied twice, and how long
abandoned work took to be picked up again.

    python -m benchmarks.faults [--runs 300] [--kills 10] [--workers 2]

Each run gets 12 events (sent twice, as a retrying producer would). Workers are killed at
random instants and replaced; at the end every run is compared with what one
uninterrupted pass makes of its events. "Recovery" is, for each kill, how long the runs
that still had queued events at that instant took to have none (the survivors' jobs, or
the sweep after RUNSTATE_RECOVER_AFTER for the jobs that died with the killed worker).
"""

import os
import random
import signal
import subprocess
import threading
import time

import click
import orjson

from benchmarks.common import percentile, redis_server, start_runstate
from statemachine.apply import Incoming, apply_event
from statemachine.events import parse_event
from statemachine.models import RunState, Tombstone
from worker import reads
from worker.runtime import Runtime
from worker.settings import Settings
from worker.store import keys


def _events(run: str) -> list[dict[str, object]]:
    out: list[dict[str, object]] = [{"id": f"{run}_s", "type": "run.started", "run_id": run, "occurred_at": 1}]
    for n in range(5):
        step = {"run_id": run, "step_id": f"s{n}", "occurred_at": 2 + n}
        out.append({"id": f"{run}_c{n}", "type": "step.created", **step})
        out.append({"id": f"{run}_d{n}", "type": "step.completed", **step, "data": {"usage": {"prompt_tokens": 1}}})
    out.append({"id": f"{run}_z", "type": "run.completed", "run_id": run, "occurred_at": 9})
    return out


def _expected(events: list[dict[str, object]]) -> str:
    state: RunState | Tombstone | None = None
    seen: set[str] = set()
    for raw in events:
        result = apply_event(state, Incoming(parse_event(orjson.dumps(raw))), now=0, seen=seen)
        seen.add(str(raw["id"]))
        state = result.state
    assert isinstance(state, RunState)
    return state.run.model_dump_json() + "".join(s.model_dump_json() for s in state.steps.values())


@click.command()
@click.option("--runs", default=300, show_default=True)
@click.option("--kills", default=10, show_default=True)
@click.option("--workers", default=2, show_default=True)
@click.option("--seed", default=1, show_default=True)
def main(runs: int, kills: int, workers: int, seed: int) -> None:
    rng = random.Random(seed)
    scripts = {f"f{n}": _events(f"f{n}") for n in range(runs)}
    with redis_server() as url:
        os.environ["REDIS_URL"] = url
        runtime = Runtime.connect(Settings())

        def spawn() -> subprocess.Popen[bytes]:
            return start_runstate(["worker"], url, RUNSTATE_BATCH_SIZE="20")

        alive = [spawn() for _ in range(workers)]
        recoveries: list[float] = []
        watchers: list[threading.Thread] = []

        def watch(pending: list[str], since: float) -> None:
            while any(runtime.redis.llen(keys.inbox(keys.ref("default", r))) for r in pending):
                time.sleep(0.05)
            recoveries.append(time.monotonic() - since)

        longest = max(len(e) for e in scripts.values())
        interleaved = [evs[i] for i in range(longest) for evs in scripts.values() if i < len(evs)]
        lines = [orjson.dumps(e).decode() for e in interleaved + interleaved]
        for start in range(0, len(lines), 200):  # publish while the workers work, and kill them meanwhile
            runtime.publisher.publish_lines(lines[start : start + 200])
            if kills and rng.random() < kills / (len(lines) / 200):
                victim = alive.pop(rng.randrange(len(alive)))
                victim.send_signal(signal.SIGKILL)
                victim.wait()
                kills -= 1
                pending = [r for r in scripts if runtime.redis.llen(keys.inbox(keys.ref("default", r)))]
                watcher = threading.Thread(target=watch, args=(pending, time.monotonic()))
                watcher.start()
                watchers.append(watcher)
                alive.append(spawn())
        for watcher in watchers:
            watcher.join(timeout=120)
        deadline = time.monotonic() + 120
        while (
            any(runtime.redis.llen(keys.inbox(keys.ref("default", r))) for r in scripts) and time.monotonic() < deadline
        ):
            time.sleep(0.2)
        for proc in alive:
            proc.terminate()
            proc.wait(timeout=60)
        stats = reads.stats(runtime.store)
        wrong = 0
        for run_id, events in scripts.items():
            state = runtime.store.get(keys.ref("default", run_id))
            got = (
                (state.run.model_dump_json() + "".join(s.model_dump_json() for s in state.steps.values()))
                if state
                else ""
            )
            wrong += got != _expected(events)
    total = sum(len(e) for e in scripts.values())
    applied, duplicates = stats["applied"], stats["duplicate"]
    click.echo(f"events: {total} distinct, each published twice ({2 * total}); runs: {runs}; workers: {workers}")
    click.echo(f"kills (SIGKILL): {len(watchers)}; counters: {stats['by_type']}")
    click.echo(f"lost: {total - applied}; applied twice: {max(0, applied - total)}; duplicates seen: {duplicates}")
    click.echo(f"runs differing from one uninterrupted pass: {wrong}")
    if recoveries:
        click.echo(
            f"recovery of abandoned work after a kill: p50 {percentile(recoveries, 0.5):.2f} s, "
            f"p99 {percentile(recoveries, 0.99):.2f} s, max {max(recoveries):.2f} s"
        )


if __name__ == "__main__":
    main()
