"""`runstate replay`: publish a file and process it in this one process, then summarize."""

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
from tabulate import tabulate

from statemachine.dialects import Format, render_run
from statemachine.errors import InvalidEvent
from statemachine.events import parse_event
from worker.intake.publisher import PublishReport
from worker.processes import run_worker
from worker.runtime import Runtime
from worker.store.keys import ref


@dataclass
class Replay:
    published: PublishReport
    runs: list[dict[str, Any]]


def replay(runtime: Runtime, path: Path) -> Replay:
    lines = path.read_text(encoding="utf-8").split("\n")  # not splitlines(): U+2028 may sit inside a JSON string
    # The whole file is queued before anything applies, so a sequence gap left after the
    # drain can never fill: no reorder window here.
    runtime = Runtime(runtime.settings.model_copy(update={"reorder_window": 0}), runtime.redis, runtime.embedded)
    report = runtime.publisher.publish_lines(lines)
    run_worker(runtime, burst=True, fork=False, log_level="warning")
    runs = []
    for run_id in _run_ids(lines):
        for account in sorted(runtime.store.holding(run_id)):  # one id may be several accounts' runs
            state = runtime.store.get(ref(account, run_id))
            if state is not None:
                runs.append(render_run(state, Format.NATIVE))
    return Replay(report, runs)


def _run_ids(lines: list[str]) -> list[str]:
    """The file's run ids, in order of first appearance."""
    ids: dict[str, None] = {}
    for line in lines:
        if line.strip():
            try:
                ids.setdefault(parse_event(line.strip()).run_id)
            except InvalidEvent:
                continue
    return list(ids)


def table(runs: list[dict[str, Any]]) -> str:
    rows = [
        [
            run["id"],
            run["status"],
            run["step_count"],
            run["usage"]["total_tokens"],
            f"${run['cost_usd']:.6f}".rstrip("0").rstrip(".") if run["cost_usd"] else "$0",
            _error(run),
        ]
        for run in runs
    ]
    return tabulate(rows, headers=["run", "status", "steps", "tokens", "cost", "error"], tablefmt="simple")


def _error(run: dict[str, Any]) -> str:
    error = run.get("error")
    return f"{error['code']}: {error['message']}"[:60] if error else ""


def json_lines(runs: list[dict[str, Any]]) -> bytes:
    return b"".join(orjson.dumps(run) + b"\n" for run in runs)
