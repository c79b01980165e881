"""Real runstate processes for integration tests: a command run to its end, a worker started and
stopped, and waiting for a condition instead of sleeping."""

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Sequence


def cli_env(redis_url: str, **extra: str) -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith("RUNSTATE_")}
    env.update({"REDIS_URL": redis_url, "RUNSTATE_LOG_LEVEL": "warning", **extra})
    return env


def runstate(
    args: Sequence[str], redis_url: str, *, stdin: bytes | None = None, **extra: str
) -> subprocess.CompletedProcess[bytes]:
    """Run the real `runstate` command in its own process."""
    return subprocess.run(
        [sys.executable, "-m", "worker", *args],
        input=stdin,
        capture_output=True,
        env=cli_env(redis_url, **extra),
        timeout=240,
        check=False,
    )


def start_worker(redis_url: str, *args: str, **extra: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "worker", "worker", *args],
        env=cli_env(redis_url, **extra),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )


def wait_until(predicate: Callable[[], bool], timeout: float = 60.0, every: float = 0.1) -> float:
    """Poll until `predicate()` holds; returns the seconds it took, fails the test after `timeout`."""
    started = time.monotonic()
    while not predicate():
        if time.monotonic() - started > timeout:
            raise AssertionError(f"not true after {timeout} s: {predicate}")
        time.sleep(every)
    return time.monotonic() - started


def stop(worker: "subprocess.Popen[bytes]", timeout: float = 60) -> str:
    """SIGTERM a worker (it finishes its job first) and return what it logged; a worker that
    does not stop in time is killed, so no test leaves one behind."""
    worker.send_signal(signal.SIGCONT)  # a test may have paused it
    worker.terminate()
    try:
        _, errors = worker.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        worker.kill()
        _, errors = worker.communicate()
    return errors.decode()
