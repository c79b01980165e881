"""The thread that waits for commits' answers is kept from one drive to the next (a live worker
drives once a turn, and a new thread costs more than a small drain), and a forked work horse
makes its own: the parent's thread does not run in a child, and a drain there must not wait on it."""

import os
import signal
import threading
import time

from tests.support.publishing import publish, refs
from worker.runtime import Runtime


def _committers() -> set[threading.Thread]:
    return {t for t in threading.enumerate() if t.name.startswith("runstate-commit")}


def test_one_commit_thread_serves_every_drive(runtime: Runtime) -> None:
    processor = runtime.processor
    before = _committers()  # other tests' processors may not be collected yet
    for n in range(3):
        publish(runtime, {"id": f"e{n}", "type": "run.started", "run_id": f"r_kept_{n}"})
        processor.drain(refs(f"r_kept_{n}"))
    assert [runtime.store.get(r) is not None for r in refs("r_kept_0", "r_kept_1", "r_kept_2")] == [True] * 3
    assert len(_committers() - before) == 1


def test_a_forked_child_drains_with_a_commit_thread_of_its_own(runtime: Runtime) -> None:
    processor = runtime.processor
    publish(runtime, {"id": "e0", "type": "run.started", "run_id": "r_parent"})
    processor.drain(refs("r_parent"))  # the parent's thread now exists
    publish(runtime, {"id": "e1", "type": "run.started", "run_id": "r_child"})
    child = os.fork()
    if child == 0:  # the work horse: a drain, then out, whatever happens
        try:
            processor.drain(refs("r_child"))
            os._exit(0)
        except BaseException:
            os._exit(1)
    assert _exit_code(child, timeout=20) == 0  # a drain waiting on the parent's thread would hang
    state = runtime.store.get(refs("r_child")[0])
    assert state is not None


def _exit_code(child: int, timeout: float) -> int | None:
    """The child's exit code, or None when it has not ended within `timeout` (it is then killed)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        pid, status = os.waitpid(child, os.WNOHANG)
        if pid:
            return os.waitstatus_to_exitcode(status)
        time.sleep(0.01)
    os.kill(child, signal.SIGKILL)
    os.waitpid(child, 0)
    return None
