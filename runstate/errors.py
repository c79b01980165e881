"""The client's errors: one root, and a leaf for each way a call can fail."""

from dataclasses import dataclass


class ClientError(Exception):
    """The root of every error `runstate.Client` raises."""


@dataclass(frozen=True, slots=True)
class Refusal:
    """One event runstate (or the client, before sending) refused, and why."""

    index: int  # its position among the events given to `publish`
    event_id: str | None  # None when the event was too malformed to have one
    reason: str  # e.g. `data.usage.prompt_tokens: Input should be greater than or equal to 0`


class EventsRefused(ClientError):
    """Raised by `publish` after every batch was sent, when some events were refused.

    The others were accepted and stay queued; `refusals` names each refused one with its reason."""

    def __init__(self, refusals: list[Refusal], accepted: int) -> None:
        self.refusals = tuple(refusals)
        self.accepted = accepted
        shown = "; ".join(f"#{r.index} {r.event_id or '?'}: {r.reason}" for r in self.refusals[:5])
        more = f"; and {len(self.refusals) - 5} more" if len(self.refusals) > 5 else ""
        total = accepted + len(self.refusals)
        super().__init__(f"{len(self.refusals)} of {total} events refused: {shown}{more}")


class RequestFailed(ClientError):
    """Raised when runstate answers an error that is not about single events (bad token, body
    too large, the server down after every retry); `status` is None when no answer came."""

    def __init__(self, status: int | None, code: str, message: str) -> None:
        self.status = status
        self.code = code
        self.message = message
        super().__init__(f"{status or 'no answer'} {code}: {message}")
