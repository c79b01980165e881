"""The HTTP API under load from wrk: requests/s of GET /v1/run/{id} and events/s of POST /v1/events
(100 events a request), each beside the same uvicorn serving a trivial FastAPI app in the same run.

    python -m benchmarks.api [--seconds 10] [--connections 16] [--repeat 3]

Needs wrk (`apt-get install -y wrk`). A private redis-server and wrk share CPU 0; the server
under test (`runstate serve`, or the baseline) has CPU 1 to itself, so its own load never
pre-empts it. The baseline answers the same paths with a constant (GET: a sync route, like
runstate's; POST: reads the body) and marks the stack's ceiling; runstate's figure is reported
as a share of it, with the server's CPU time per request beside it (steadier than rates when
the machine is shared). Each POST carries 10 fresh runs of 10 events (distinct run and event
ids, made by wrk's Lua `request()`); at the end the events queued in Redis are counted, drained
with `runstate worker --burst`, and `runstate stats` must show every one applied.
"""

import contextlib
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import click
import httpx
import orjson
from fastapi import FastAPI, Request
from redis import Redis

from benchmarks.common import PIN, free_port, pinned, redis_server, run_events, runstate
from worker.store import keys

TOKEN = "tok_bench"  # noqa: S105 (a throwaway token for the private server)
ACCOUNT = "acct_bench"
RUN_ID = "run_http"
# wrk beside Redis: both are C and use a small share of a core at these rates (wrk ~8 % at 1,300
# GETs/s); the Python server is what saturates, so it keeps CPU 1 to itself.
LOAD_CPU = 0
BATCH_RUNS = 10  # runs a POST carries, 10 events each: 100 events a request

baseline = FastAPI()


@baseline.get("/healthz")
@baseline.get("/v1/run/{run_id}")
def _baseline_get(run_id: str = "") -> dict[str, str]:  # sync, like runstate's reads: one threadpool hop
    return {"id": run_id, "status": "completed"}


@baseline.post("/v1/events", status_code=202)
async def _baseline_post(request: Request) -> dict[str, Any]:
    await request.body()
    return {"accepted": 100, "rejected": []}


LUA_DONE = """
function done(summary, latency, requests)
  local e = summary.errors
  io.write(string.format('WRK {"requests": %d, "seconds": %.6f, "p50": %d, "p99": %d, "bad_status": %d, '
    .. '"socket_errors": %d}\\n', summary.requests, summary.duration / 1e6, latency:percentile(50),
    latency:percentile(99), e.status, e.connect + e.read + e.write + e.timeout))
end
"""

LUA_POST = """
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
local template = [==[BODY]==]
local tag, n = "", 0
function init(args) tag = args[1] .. "_" end
function request()
  n = n + 1
  return wrk.format(nil, nil, nil, (template:gsub("@", tag .. n .. "_")))
end
"""


@dataclass(frozen=True)
class Server:
    url: str
    pid: int

    def cpu_seconds(self) -> float:
        """User + system CPU time of the server process so far (all its threads)."""
        fields = Path(f"/proc/{self.pid}/stat").read_text().rpartition(")")[2].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True)
class Load:
    per_second: float  # requests
    p50_ms: float
    p99_ms: float
    cpu_ms: float  # the server's CPU time per request
    server_busy: float  # the server's CPU time / wall time (1.0: one core saturated)
    load_busy: float  # CPU 0 (wrk, Redis, and whatever else the machine runs there) busy / wall
    errors: int  # status >= 400 and socket errors, as wrk counts them
    requests: int


def _cpu0() -> tuple[int, int]:
    """(busy, total) jiffies of CPU 0 from /proc/stat."""
    line = next(x for x in Path("/proc/stat").read_text().splitlines() if x.startswith("cpu0 "))
    ticks = [int(x) for x in line.split()[1:]]
    return sum(ticks) - ticks[3] - ticks[4], sum(ticks)


def wrk(target: Server, path: str, lua: str, seconds: int, connections: int, *args: str) -> Load:
    """One wrk run (one thread, pinned to LOAD_CPU) against `target`; `args` go to the Lua script."""
    with tempfile.NamedTemporaryFile("w", suffix=".lua") as script:
        script.write(lua + LUA_DONE)
        script.flush()
        argv = ["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "--latency", "-s", script.name]
        argv += ["-H", f"Authorization: Bearer {TOKEN}", target.url + path, "--", *args]
        cpu0, cpu = _cpu0(), target.cpu_seconds()
        out = subprocess.run(pinned(LOAD_CPU, argv), capture_output=True, text=True, check=True).stdout
        cpu0_after, cpu_after = _cpu0(), target.cpu_seconds()
    found = orjson.loads(next(line[4:] for line in out.splitlines() if line.startswith("WRK ")))
    requests, wall = found["requests"], found["seconds"]
    return Load(
        per_second=requests / wall,
        p50_ms=found["p50"] / 1000,
        p99_ms=found["p99"] / 1000,
        cpu_ms=(cpu_after - cpu) * 1000 / max(1, requests),
        server_busy=(cpu_after - cpu) / wall,
        load_busy=(cpu0_after[0] - cpu0[0]) / max(1, cpu0_after[1] - cpu0[1]),
        errors=found["bad_status"] + found["socket_errors"],
        requests=requests,
    )


@contextlib.contextmanager
def server(argv: list[str], redis_url: str, log: Path) -> Iterator[Server]:
    """A server process (its port appended to `argv`) pinned to CPU 1, answering /healthz."""
    port = free_port()
    env = {**os.environ, "REDIS_URL": redis_url, "RUNSTATE_API_TOKENS": f"{TOKEN}:{ACCOUNT}"}
    env["RUNSTATE_LOG_LEVEL"] = "warning"
    with log.open("wb") as out:
        proc = subprocess.Popen(pinned(1, [*argv, str(port)]), env=env, stdout=out, stderr=out)
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(200):
            with contextlib.suppress(httpx.TransportError):
                httpx.get(f"{base}/healthz", timeout=1).raise_for_status()
                break
            time.sleep(0.05)
        else:
            raise RuntimeError(f"{argv} did not answer /healthz: {log.read_text()[-2000:]}")
        yield Server(base, proc.pid)  # taskset execs the server: same pid
    finally:
        proc.terminate()
        proc.wait(timeout=30)


RUNSTATE = [sys.executable, "-m", "worker", "serve", "--port"]
# the same logging and uvicorn.run call as `runstate serve`, on the trivial app
BASELINE = [
    sys.executable,
    "-c",
    "import sys, uvicorn; from worker.logs import configure; configure('warning'); "
    "uvicorn.run('benchmarks.api:baseline', port=int(sys.argv[1]), log_config=None)",
]


def log_summary(log: Path) -> str:
    """What a server logged (JSON lines), counted by event and exception type."""
    seen: Counter[str] = Counter()
    for line in log.read_bytes().splitlines():
        try:
            entry = orjson.loads(line)
            seen[" ".join([entry["event"].strip(), *entry.get("exc_info", [])[:1]])] += 1
        except (orjson.JSONDecodeError, TypeError, KeyError):
            seen[line.decode(errors="replace")[:100]] += 1
    return "; ".join(f"{n} x {what}" for what, n in seen.most_common()) or "nothing"


def finished_run() -> list[dict[str, Any]]:
    """A finished run of 4 steps on two models: what a dashboard polls."""
    start = round(time.time()) - 60
    models = [("gpt-4o", 812, 95, 0.0031), ("gpt-4o-mini", 1400, 230, 0.0004)] * 2
    events: list[dict[str, Any]] = [
        {"id": "e0", "type": "run.started", "run_id": RUN_ID, "occurred_at": start,
         "data": {"runnable_id": "rbl_search", "created_by": "usr_7", "metadata": {"team": "search"}}},
    ]  # fmt: skip
    for n, (model, prompt, completion, cost) in enumerate(models):
        step = {"run_id": RUN_ID, "step_id": f"step_{n}", "occurred_at": start + 2 * n + 1}
        data = {"model": model, "provider_name": "openai"}
        events.append({**step, "id": f"c{n}", "type": "step.created", "data": data})
        usage = {"prompt_tokens": prompt, "completion_tokens": completion, "cached_tokens": prompt // 2}
        events.append({**step, "id": f"d{n}", "type": "step.completed", "data": {"usage": usage, "cost_usd": cost}})
    outputs = {"outputs": {"answer": "42"}}
    events.append({"id": "e1", "type": "run.completed", "run_id": RUN_ID, "occurred_at": start + 9, "data": outputs})
    return events


def post_template() -> str:
    """100 events (10 runs x 10) as one JSON array; wrk replaces each `@` by a prefix unique to the request."""
    items = [orjson.loads(line) for line in run_events(BATCH_RUNS)]
    for item in items:
        item["id"], item["run_id"] = "@" + item["id"], "@" + item["run_id"]
    return orjson.dumps(items).decode()


def queued_events(redis: Redis) -> int:
    return sum(int(redis.llen(key)) for key in redis.scan_iter(keys.inbox(keys.RunRef("*")), count=1000))


def applied(redis_url: str) -> int:
    env = {**os.environ, "REDIS_URL": redis_url, "RUNSTATE_LOG_LEVEL": "warning"}
    argv = pinned(1, [sys.executable, "-m", "worker", "stats"])
    return int(orjson.loads(subprocess.run(argv, env=env, capture_output=True, check=True).stdout)["applied"])


COLUMNS = ("per s", "p50 ms", "p99 ms", "CPU ms/req", "server CPU", "CPU 0", "errors")


def _row(name: str, loads: list[Load], unit: int = 1) -> str:
    median = statistics.median
    cells = [
        f"{median(x.per_second * unit for x in loads):,.0f}",
        f"{median(x.p50_ms for x in loads):.1f}",
        f"{median(x.p99_ms for x in loads):.1f}",
        f"{median(x.cpu_ms for x in loads):.2f}",
        f"{median(x.server_busy for x in loads):.0%}",
        f"{median(x.load_busy for x in loads):.0%}",
        f"{sum(x.errors for x in loads)}",
    ]
    each = ", ".join(f"{x.per_second * unit:,.0f}" for x in loads)
    return f"{name:<26}" + "".join(f"{c:>11}" for c in cells) + f"   ({each})"


def _ratios(kind: str, ours: list[Load], base: list[Load]) -> str:
    rate = statistics.median(x.per_second for x in ours) / statistics.median(x.per_second for x in base)
    cpu = statistics.median(x.cpu_ms for x in ours) / statistics.median(x.cpu_ms for x in base)
    return f"{kind} runstate / baseline: {rate:.2f} of the requests/s, {cpu:.1f}x the server CPU per request"


@click.command()
@click.option("--seconds", default=10, show_default=True, help="Duration of each wrk run.")
@click.option("--connections", default=16, show_default=True, help="wrk's open connections (one thread).")
@click.option("--repeat", default=3, show_default=True, help="Runs of each; medians are reported.")
def main(seconds: int, connections: int, repeat: int) -> None:
    if shutil.which("wrk") is None:
        click.echo("benchmarks.api needs wrk, the HTTP load tool: apt-get install -y wrk", err=True)
        sys.exit(2)
    get: list[Load] = []
    base_get: list[Load] = []
    post: list[Load] = []
    base_post: list[Load] = []
    template = LUA_POST.replace("BODY", post_template())
    logs = Path(tempfile.mkdtemp(prefix="bench-api-"))
    with (
        redis_server() as url,
        server(BASELINE, url, logs / "baseline.log") as base,
        server(RUNSTATE, url, logs / "runstate.log") as ours,
    ):
        client = httpx.Client(base_url=ours.url, headers={"Authorization": f"Bearer {TOKEN}"})
        assert client.post("/v1/events", json=finished_run()).json()["accepted"] == 10
        runstate(["worker", "--burst"], url)
        document = client.get(f"/v1/run/{RUN_ID}").content
        assert orjson.loads(document)["status"] == "completed", document
        before = applied(url)
        for n in range(repeat):  # interleaved, so that the machine's noise hits both alike
            base_get.append(wrk(base, f"/v1/run/{RUN_ID}", "", seconds, connections))
            get.append(wrk(ours, f"/v1/run/{RUN_ID}", "", seconds, connections))
            base_post.append(wrk(base, "/v1/events", template, seconds, connections, f"b{n}"))
            post.append(wrk(ours, "/v1/events", template, seconds, connections, f"r{n}"))
        time.sleep(1)  # requests still in flight when wrk stopped
        queued = queued_events(Redis.from_url(url))
        runstate(["worker", "--burst"], url)
        drained = applied(url) - before
    answered = sum(x.requests for x in post) * 100
    where = "Redis and wrk on CPU 0, the server on CPU 1" if PIN else "NOT pinned (no taskset or one CPU)"
    click.echo(f"wrk -t1 -c{connections} -d{seconds}s; {where}; medians of {repeat}")
    click.echo(f"GET /v1/run/{RUN_ID}: {len(document):,} bytes of re-factor JSON (4 steps, two models)")
    click.echo(f"{'':<26}" + "".join(f"{c:>11}" for c in COLUMNS))
    click.echo(_row("GET  baseline (trivial)", base_get))
    click.echo(_row("GET  runstate", get))
    click.echo(_row("POST baseline (events/s)", base_post, 100))
    click.echo(_row("POST runstate (events/s)", post, 100))
    click.echo(_ratios("GET ", get, base_get))
    click.echo(_ratios("POST", post, base_post))
    click.echo(
        f"POST check: {answered:,} events answered 202 within wrk's runs; {queued:,} queued in Redis "
        f"(requests in flight when wrk stopped included); {drained:,} applied by `runstate worker --burst`"
    )
    for name in ("baseline", "runstate"):
        click.echo(f"{name} server logged: {log_summary(logs / f'{name}.log')}")
    shutil.rmtree(logs)
    errors = sum(x.errors for x in get + base_get + post + base_post)
    if errors or not answered <= queued == drained:
        click.echo(f"FAILED: {errors} answers >= 400 or socket errors; {queued - drained} queued events not applied")
        sys.exit(1)


if __name__ == "__main__":
    main()
