"""What every request passes before FastAPI parses anything: its head's size, its token, its
body's size, its body's deadline. A pure ASGI middleware, so nothing of an unauthenticated or
oversized body is ever held in memory.

- A request head (request line and headers) over HEAD_CAP, 16 KiB, is answered 431. h11 refuses
  to buffer an unfinished head past the cap (protocol.py answers that 431 too), but a longer one
  that arrives whole in one read (up to 256 KiB) it parses; this catches it.
- `/v1/` routes need a known Bearer token: an unknown one is answered 401 before a byte of the
  body is read (the rate limit, which needs Redis, stays in the route's dependency).
- Each route has a body cap (1 MiB for `POST /v1/events`, 8 MiB for `POST /v1/traces`, 64 KiB elsewhere): a declared
  Content-Length over it is answered 413 at once, and a body that streams past it is cut at
  the cap (chunked uploads declare nothing).
- The whole body must arrive within RUNSTATE_API_READ_TIMEOUT seconds of the headers: a client
  trickling a byte at a time (slowloris) is answered 408 and its connection closed. The head's
  own deadline is protocol.py's: the app never sees a request whose head is unfinished.
"""

import asyncio
import time
from collections.abc import Mapping

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from worker.api.errors import ApiError, error_response

EVENTS_BODY = 1_048_576  # POST /v1/events: up to 1,000 events
TRACES_BODY = 8 * 1_048_576  # POST /v1/traces: one OTLP export (api/traces.py reads no more)
OTHER_BODY = 65_536  # every other route: a webhook subscription is under 3 KiB
HEAD_CAP = 16_384  # request line and headers: h11's default cap on an unfinished head
PROTECTED = "/v1/"


def body_cap(path: str) -> int:
    return {"/v1/events": EVENTS_BODY, "/v1/traces": TRACES_BODY}.get(path, OTHER_BODY)


class Guard:
    """The middleware; `tokens` are RUNSTATE_API_TOKENS' (token -> account)."""

    def __init__(self, app: ASGIApp, tokens: Mapping[str, str], read_timeout: float) -> None:
        self.app = app
        self.tokens = tokens
        self.read_timeout = read_timeout

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path: str = scope["path"]
        if (size := head_size(scope)) > HEAD_CAP:
            refusal = error_response(
                431, "INVALID_INPUT", f"request head is {size} bytes; at most {HEAD_CAP} are allowed"
            )
            await refusal(scope, receive, send)
            return
        headers = {name.lower(): value for name, value in scope["headers"]}
        if path.startswith(PROTECTED) and _bearer(headers.get(b"authorization", b"")) not in self.tokens:
            refusal = error_response(
                401, "AUTHORIZATION_ERROR", "a valid Bearer token is required", headers={"WWW-Authenticate": "Bearer"}
            )
            await refusal(scope, receive, send)
            return
        cap = body_cap(path)
        declared = headers.get(b"content-length", b"")
        if declared.isdigit() and int(declared) > cap:
            await error_response(413, "INVALID_INPUT", f"body is {int(declared)} bytes; at most {cap} are allowed")(
                scope, receive, send
            )
            return
        await self.app(scope, _Body(receive, cap, time.monotonic() + self.read_timeout, self.read_timeout), send)


def head_size(scope: Scope) -> int:
    """The head's bytes as sent, but for whitespace h11 drops: its request line and headers."""
    query: bytes = scope["query_string"]
    target = len(scope.get("raw_path") or scope["path"]) + (len(query) + 1 if query else 0)  # "?query"
    line = len(scope["method"]) + 1 + target + len(" HTTP/1.1\r\n")
    return line + sum(len(name) + len(value) + len(": \r\n") for name, value in scope["headers"]) + len("\r\n")


def _bearer(value: bytes) -> str | None:
    scheme, _, token = value.decode("latin-1").partition(" ")
    return token.strip() if scheme.lower() == "bearer" and token.strip() else None


class _Body:
    """`receive` with the body's cap and deadline: raises ApiError (413, 408), which FastAPI
    answers in the one error shape, since it happens while a route reads its body."""

    def __init__(self, receive: Receive, cap: int, deadline: float, seconds: float) -> None:
        self.receive = receive
        self.cap = cap
        self.deadline = deadline
        self.seconds = seconds
        self.size = 0
        self.done = False  # the whole body is in: later calls only wait for a disconnect

    async def __call__(self) -> Message:
        if self.done:
            return await self.receive()
        try:
            message = await asyncio.wait_for(self.receive(), max(0.0, self.deadline - time.monotonic()))
        except TimeoutError:
            late = f"the body did not arrive within {self.seconds:g} s (RUNSTATE_API_READ_TIMEOUT)"
            raise ApiError(408, late) from None
        if message["type"] == "http.request":
            self.size += len(message.get("body", b""))
            if self.size > self.cap:
                raise ApiError(413, f"body is over {self.cap} bytes; at most {self.cap} are allowed")
        self.done = message["type"] != "http.request" or not message.get("more_body", False)
        return message
