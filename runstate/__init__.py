"""runstate for producers: publish your agents' events and read their runs back.

    import runstate
    from runstate import events

    with runstate.Client("http://localhost:8000", token="tok_a") as client:
        client.publish([events.run_started("run_1"), events.run_completed("run_1")])
        print(client.run("run_1")["status"])

Everything not listed in `__all__` may change without notice.
"""

from runstate import events
from runstate.client import Client
from runstate.errors import ClientError, EventsRefused, Refusal, RequestFailed

__all__ = ["Client", "ClientError", "EventsRefused", "Refusal", "RequestFailed", "events"]
