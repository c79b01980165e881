"""Benchmark plumbing: a private redis-server pinned to CPU 0, event logs, timing helpers."""

import contextlib
import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import orjson

PIN = shutil.which("taskset") is not None and (os.cpu_count() or 1) >= 2


def pinned(cpu: int, argv: list[str]) -> list[str]:
    """Redis on CPU 0 and the measured process on CPU 1, as benchmarks/README.md ("How they are
    measured") says, where taskset exists."""
    return ["taskset", "-c", str(cpu), *argv] if PIN else argv


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


REDIS_NICE = -10  # a Redis that shares its core with workers must not wait for their time slices


@contextmanager
def redis_server() -> Iterator[str]:
    """A throwaway redis-server on a free port (never the user's 6379), pinned to CPU 0 and, where
    this user may, at a higher priority than the workers beside it; yields its URL."""
    port = free_port()
    server = subprocess.Popen(
        pinned(0, ["redis-server", "--port", str(port), "--save", "", "--appendonly", "no", "--bind", "127.0.0.1"]),
        stdout=subprocess.DEVNULL,
    )
    with contextlib.suppress(OSError):  # not allowed (not root): it runs at the usual priority
        os.setpriority(os.PRIO_PROCESS, server.pid, REDIS_NICE)
    try:
        from redis import Redis

        client = Redis(port=port)
        for _ in range(100):
            try:
                client.ping()
                break
            except Exception:
                time.sleep(0.05)
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        server.terminate()
        server.wait(timeout=10)


def run_events(runs: int, steps: int = 4, offset: int = 0, prefix: str = "run") -> list[bytes]:
    """`runs` runs of 2 + 2*steps events each: start, steps created and completed, end; ids
    `<prefix>_<offset>` on."""
    lines = []
    for r in range(offset, offset + runs):
        run_id = f"{prefix}_{r}"
        lines.append({"id": f"{run_id}_s", "type": "run.started", "run_id": run_id, "data": {"runnable_id": "bench"}})
        for s in range(steps):
            step = f"step_{s}"
            lines.append(
                {
                    "id": f"{run_id}_{s}c",
                    "type": "step.created",
                    "run_id": run_id,
                    "step_id": step,
                    "data": {"model": "gpt-4o", "provider_name": "openai"},
                }
            )
            lines.append(
                {
                    "id": f"{run_id}_{s}d",
                    "type": "step.completed",
                    "run_id": run_id,
                    "step_id": step,
                    "data": {"usage": {"prompt_tokens": 100, "completion_tokens": 20}, "cost_usd": 0.0004},
                }
            )
        lines.append({"id": f"{run_id}_e", "type": "run.completed", "run_id": run_id})
    return [orjson.dumps(line) for line in lines]


def write_events(path: Path, lines: list[bytes]) -> Path:
    path.write_bytes(b"\n".join(lines) + b"\n")
    return path


def runstate(argv: list[str], redis_url: str, cpu: int = 1, *, code: Path | str | None = None, **env: str) -> float:
    """Run a `runstate` command to completion (with `env` added to its environment); returns its
    wall time in seconds."""
    started = time.perf_counter()
    done = subprocess.run(
        pinned(cpu, [sys.executable, "-m", "worker", *argv]),
        env=runstate_env(redis_url, code, **env),
        capture_output=True,
        cwd=code,
    )
    if done.returncode != 0:
        raise RuntimeError(f"runstate {' '.join(argv)} failed: {done.stderr.decode()[-2000:]}")
    return time.perf_counter() - started


def start_runstate(
    argv: list[str], redis_url: str, cpu: int = 1, *, code: Path | str | None = None, **env: str
) -> subprocess.Popen[bytes]:
    """Start a `runstate` command (`python -m worker ...`) pinned to `cpu`, with `env` added;
    `code`: a checkout to run instead of this one (another version, to compare in turn)."""
    return subprocess.Popen(
        pinned(cpu, [sys.executable, "-m", "worker", *argv]), env=runstate_env(redis_url, code, **env), cwd=code
    )


def runstate_env(redis_url: str, code: Path | str | None = None, **env: str) -> dict[str, str]:
    """A benchmark's runstate processes log errors only: the durability warning of a throwaway
    Redis is expected. `code` goes first on the path (it is also the working directory)."""
    path = {"PYTHONPATH": str(code)} if code is not None else {}
    return {**os.environ, "REDIS_URL": redis_url, "RUNSTATE_LOG_LEVEL": "error", **path, **env}


def percentile(values: list[float], share: float) -> float:
    """The value below which `share` of `values` fall (nearest rank)."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]
