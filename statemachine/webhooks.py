"""What a status-change webhook says, and which subscriptions want it (docs/design.md, "Webhooks").

Pure: the payload of a transition and the filter rule. Sending is `worker.webhooks.sender`'s job.
"""

import re

from statemachine.models import Transition
from statemachine.status import ObjectKind
from statemachine.timefmt import rfc3339

# `run.completed`, `step.expired`, `run.*`, `*`
_FILTER = re.compile(r"\*|(run|step)\.(\*|[a-z_]+)")


def valid_filter(pattern: str) -> bool:
    return bool(_FILTER.fullmatch(pattern))


def matches(patterns: list[str], kind: ObjectKind | str, status: str) -> bool:
    """Whether a subscription with these filters wants `<kind>.<status>`."""
    name = f"{kind}.{status}"
    return any(p == "*" or p == name or p == f"{kind}.*" for p in patterns)


def is_status_change(transition: Transition) -> bool:
    """Creations, cascades and deadlines are; a late-usage note is not."""
    return transition.note is None and transition.from_ != transition.to


def delivery_id(subscription_id: str, transition: Transition, run_created_at: int) -> str:
    """The `webhook-id`: the same for every attempt and replay of one transition to one subscription.
    The run's creation time tells apart two runs that used one id years apart."""
    return f"msg_{subscription_id}_{transition.run_id}_{run_created_at}_{transition.n}"


def payload(transition: Transition, account_id: str) -> dict[str, object]:
    """The body: its `timestamp` is the transition's time, so every retry sends the same bytes.
    `account_id` is the run's account: with its `run_id`, what identifies the run."""
    return {
        "type": f"{transition.object}.status_changed",
        "timestamp": rfc3339(transition.at),
        "data": {
            "object": transition.object.value,
            "status": transition.to,
            "previous_status": transition.from_,
            "account_id": account_id,
            "run_id": transition.run_id,
            "step_id": transition.id if transition.object is ObjectKind.STEP else None,
            "event_id": transition.event_id,
            "transition": transition.n,
        },
    }
