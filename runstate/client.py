"""`Client`: publish events to a runstate server over HTTP and read runs and steps back.

Publishing is safe to retry: runstate counts an event id once per run, so a batch whose
answer was lost is sent again as it was, and nothing is counted twice.
"""

from collections.abc import Iterable, Iterator, Mapping
from decimal import Decimal
from types import TracebackType
from typing import Any, Self

import httpx
import orjson
import stamina

from runstate.errors import EventsRefused, Refusal, RequestFailed

MAX_BATCH = 1_000  # events in one POST /v1/events (the server's limit)
MAX_BODY = 1_000_000  # bytes of one body; the server allows 1 MiB
TRANSIENT_STATUSES = frozenset({429, 500, 502, 503, 504})
Encoded = tuple[int, str | None, bytes]  # an event's index among those given, its id, its JSON


class _Transient(Exception):
    """An answer worth asking again for; `retry_after` is the server's wait in seconds."""

    def __init__(self, response: httpx.Response) -> None:
        self.response = response
        after = response.headers.get("retry-after", "")
        self.retry_after = float(after) if after.replace(".", "", 1).isdigit() else None
        super().__init__(f"HTTP {response.status_code}")


def _retry_on(exc: Exception) -> bool | float:
    if isinstance(exc, _Transient):
        return exc.retry_after if exc.retry_after is not None else True
    return isinstance(exc, httpx.TransportError)  # connection refused or reset, timeouts


def _json(value: Any) -> Any:
    if isinstance(value, Decimal):
        return orjson.Fragment(format(value, "f").encode())  # the exact digits, as a JSON number
    raise TypeError(f"{type(value).__name__} is not JSON serializable")


class Client:
    """runstate's HTTP API for producers: `publish` events, read `run`, `steps`, `history`, `find_runs`."""

    def __init__(
        self,
        base_url: str,
        token: str | None = None,
        *,
        timeout: float = 10.0,
        attempts: int = 6,
        batch_size: int = 500,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        if not 1 <= batch_size <= MAX_BATCH:
            raise ValueError(f"batch_size is {batch_size}; it must be 1 to {MAX_BATCH}")
        headers = {"authorization": f"Bearer {token}"} if token else {}
        self._http = httpx.Client(base_url=base_url, headers=headers, timeout=timeout, transport=transport)
        self._attempts = attempts
        self._batch_size = batch_size

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: type[BaseException] | BaseException | TracebackType | None) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    # --- publishing -----------------------------------------------------------------------

    def publish(self, events: Iterable[Mapping[str, Any] | str | bytes]) -> int:
        """Send events (dicts, or JSON texts) in batches; the number accepted.

        Raises EventsRefused, after every batch was sent, naming each refused event and why;
        RequestFailed when the server refuses a whole request or stays unreachable."""
        refusals: list[Refusal] = []
        accepted = 0
        for batch in self._batches(events, refusals):
            accepted += self._send(batch, refusals)
        if refusals:
            raise EventsRefused(sorted(refusals, key=lambda r: r.index), accepted)
        return accepted

    def _batches(
        self, events: Iterable[Mapping[str, Any] | str | bytes], refusals: list[Refusal]
    ) -> Iterator[list[Encoded]]:
        batch: list[Encoded] = []
        size = 2
        for index, event in enumerate(events):
            encoded = _encoded(index, event, refusals)
            if encoded is None:
                continue
            if batch and (len(batch) == self._batch_size or size + len(encoded[2]) + 1 > MAX_BODY):
                yield batch
                batch, size = [], 2
            batch.append(encoded)
            size += len(encoded[2]) + 1
        if batch:
            yield batch

    def _send(self, batch: list[Encoded], refusals: list[Refusal]) -> int:
        body = b"[" + b",".join(text for _, _, text in batch) + b"]"
        response = self._request("POST", "/v1/events", content=body, headers={"content-type": "application/json"})
        answer = response.json()
        if response.status_code == 400 and "rejected" in answer.get("error", {}):
            rejected, accepted = answer["error"]["rejected"], 0
        elif response.status_code == 202:
            rejected, accepted = answer["rejected"], answer["accepted"]
        else:
            raise _failure(response)
        for item in rejected:
            index, event_id, _ = batch[item["index"]]
            refusals.append(Refusal(index, event_id, item["error"]))
        return int(accepted)

    def _request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        """One request, asked again while the answer is transient (429, 5xx, no connection)."""
        try:
            for attempt in stamina.retry_context(on=_retry_on, attempts=self._attempts, timeout=None):
                with attempt:
                    response = self._http.request(method, path, **kwargs)
                    if response.status_code in TRANSIENT_STATUSES:
                        raise _Transient(response)
        except _Transient as exc:
            raise _failure(exc.response) from None
        except httpx.TransportError as exc:
            raise RequestFailed(None, "UNREACHABLE", f"{method} {path}: {exc!r}") from None
        return response

    # --- reading --------------------------------------------------------------------------

    def run(self, run_id: str) -> dict[str, Any] | None:
        """The run in re-factor's shape (status, totals, result), or None when there is none."""
        response = self._request("GET", f"/v1/runs/{run_id}")
        if response.status_code == 404:
            return None
        return _ok(response)

    def steps(self, run_id: str, *, format: str = "native") -> list[dict[str, Any]]:
        """Every step of the run in creation order, in `format` (native, azure or letta)."""
        return self._pages(f"/v1/runs/{run_id}/steps", {"format": format})

    def history(self, run_id: str) -> list[dict[str, Any]]:
        """The run's transitions, in order."""
        data: list[dict[str, Any]] = _ok(self._request("GET", f"/v1/runs/{run_id}/history"))["data"]
        return data

    def find_runs(self, *, thread_id: str | None = None, status: str | None = None) -> list[dict[str, Any]]:
        """The token's account's runs (re-factor's shape), oldest first, on this thread and in this status."""
        params = {name: value for name, value in (("thread_id", thread_id), ("status", status)) if value is not None}
        return self._pages("/v1/runs", params)

    def _pages(self, path: str, params: dict[str, str]) -> list[dict[str, Any]]:
        found: list[dict[str, Any]] = []
        after: str | None = None
        while True:
            query = {**params, "limit": "100"} | ({"after": after} if after else {})
            page = _ok(self._request("GET", path, params=query))
            found += page["data"]
            if not page["has_more"]:
                return found
            after = page["last_id"]


def _encoded(
    index: int, event: Mapping[str, Any] | str | bytes, refusals: list[Refusal]
) -> tuple[int, str | None, bytes] | None:
    """The event as JSON bytes with its id; None (and a refusal) when it is not a JSON object."""
    try:
        value = orjson.loads(event) if isinstance(event, str | bytes) else event
        if not isinstance(value, Mapping):
            raise TypeError("an event must be a JSON object")
        text = orjson.dumps(value, default=_json)
    except (orjson.JSONDecodeError, TypeError) as exc:
        refusals.append(Refusal(index, None, f"not sent: {exc}"))
        return None
    event_id = value.get("id")
    return index, event_id if isinstance(event_id, str) else None, text


def _ok(response: httpx.Response) -> dict[str, Any]:
    if response.status_code >= 300:
        raise _failure(response)
    answer: dict[str, Any] = response.json()
    return answer


def _failure(response: httpx.Response) -> RequestFailed:
    try:
        error = response.json()["error"]
        return RequestFailed(response.status_code, str(error["code"]), str(error["message"]))
    except (ValueError, KeyError, TypeError):
        return RequestFailed(response.status_code, "HTTP_ERROR", response.text[:500])
