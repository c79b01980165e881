"""A run as Letta's `Run` (letta_client.types.agents.Run), for `GET /letta/v1/runs/{id}`.

Letta's run statuses are created, running, completed, failed and cancelled; its `stop_reason`
says why a run stopped. runstate's statuses map onto them:

- `running` → `running`, no stop reason;
- `waiting` (paused until the user answers) → `running` with stop reason `requires_approval`:
  the run is not over, and Letta's word for "stopped until a human answers" is that reason;
- `completed` → `completed`, `end_turn`; `failed` → `failed`, `error`;
  `cancelled` → `cancelled`, `cancelled`;
- `timeout` → `failed` with `error`: Letta has no timeout status or reason; runstate's own
  shapes (`native`, `refactor`) keep the difference.

`agent_id` is the run's assistant id ("" when it never named one: Letta requires a string),
`conversation_id` its thread id, and `total_duration_ns` the time from creation to the end of
a finished run. Fields runstate knows nothing of (callbacks, templates, request config, time to
first token) are null.
"""

from typing import Any

from statemachine.models import Run
from statemachine.status import RunStatus
from statemachine.timefmt import rfc3339

LETTA_RUN_STATUS = {
    RunStatus.RUNNING: "running",
    RunStatus.WAITING: "running",
    RunStatus.COMPLETED: "completed",
    RunStatus.FAILED: "failed",
    RunStatus.CANCELLED: "cancelled",
    RunStatus.TIMEOUT: "failed",
}
LETTA_RUN_STOP_REASON = {
    RunStatus.WAITING: "requires_approval",
    RunStatus.COMPLETED: "end_turn",
    RunStatus.FAILED: "error",
    RunStatus.CANCELLED: "cancelled",
    RunStatus.TIMEOUT: "error",
}


def letta_run(run: Run) -> dict[str, Any]:
    """Every field of Letta's `Run`, in its order."""
    ended = run.completed_at
    return {
        "id": run.id,
        "agent_id": run.assistant_id or "",
        "background": None,
        "base_template_id": None,
        "callback_error": None,
        "callback_sent_at": None,
        "callback_status_code": None,
        "callback_url": None,
        "completed_at": rfc3339(ended),
        "conversation_id": run.thread_id,
        "created_at": rfc3339(run.created_at),
        "metadata": dict(run.metadata),
        "request_config": None,
        "status": LETTA_RUN_STATUS[run.status],
        "stop_reason": LETTA_RUN_STOP_REASON.get(run.status),
        "total_duration_ns": None if ended is None else (ended - run.created_at) * 1_000_000,
        "ttft_ns": None,
    }
