"""The HTTP/1.1 connection under `runstate serve`: uvicorn's h11 protocol with a deadline on the
request head, which no ASGI middleware can set, since the app sees a request only once its head
is complete (guard.py's deadline covers the body; uvicorn's `timeout_keep_alive` only an idle
connection between requests).

As nginx's `client_header_timeout`: a connection's first request head must be complete within
RUNSTATE_API_READ_TIMEOUT seconds of the connection opening, a later one within as many seconds
of its first byte (the idle wait before it is uvicorn's keep-alive timeout, 5 s). A head begun
and not finished in time (slowloris) is answered 408 and its connection closed, with one log
line; a connection that sent nothing is closed silently (a browser's preconnected socket).

A head h11 refuses to buffer past HEAD_CAP is answered 431 rather than uvicorn's plain 400; both
answers are in the API's one error shape. A complete head past the cap is guard.py's to refuse.

A refused connection closes the way nginx's lingering close does: the answer, then our half of
the connection, then whatever the client is still sending is read and dropped until it closes
its half or LINGER_SECONDS pass. Closing with its bytes unread would make the kernel reset the
connection, and a reset drops the answer before the client has read it.
"""

import asyncio

import h11
import structlog
from uvicorn.protocols.http.h11_impl import STATUS_PHRASES, H11Protocol

from worker.api.errors import CODES, error_response
from worker.api.guard import HEAD_CAP

log = structlog.get_logger("runstate.api")

LINGER_SECONDS = 2.0  # how long a refused client's further bytes are read and dropped


def with_head_deadline(seconds: float) -> type[H11Protocol]:
    """The protocol class for `uvicorn.run(http=...)`: heads due within `seconds`."""
    return type("HeadDeadlineProtocol", (HeadDeadline,), {"head_seconds": seconds})


class HeadDeadline(H11Protocol):
    head_seconds = 30.0  # RUNSTATE_API_READ_TIMEOUT's default; `with_head_deadline` sets it
    head_timer: asyncio.TimerHandle | None = None  # armed while a head is awaited
    linger_timer: asyncio.TimerHandle | None = None  # armed once refused: closes after LINGER_SECONDS

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._watch_head(begun=True)  # the first head is timed from the connection's opening

    def data_received(self, data: bytes) -> None:
        if self.transport.is_closing() or self.linger_timer is not None:
            return  # refused (a 408, a 431): what still comes in is dropped
        super().data_received(data)
        self._watch_head(begun=True)

    def on_response_complete(self) -> None:
        super().on_response_complete()
        # a pipelined head already (partly) in is timed now; none yet is keep-alive's to time
        self._watch_head(begun=self.conn.their_state is h11.IDLE and bool(self.conn.trailing_data[0]))

    def connection_lost(self, exc: Exception | None) -> None:
        self._stop_head_clock()
        if self.linger_timer is not None:
            self.linger_timer.cancel()
        super().connection_lost(exc)

    def send_400_response(self, msg: str) -> None:
        """What h11 refuses, answered: past HEAD_CAP is its one reason to refuse a buffer's length."""
        if len(self.conn.trailing_data[0]) > HEAD_CAP:
            self._refuse(431, f"request head is over {HEAD_CAP} bytes; at most {HEAD_CAP} are allowed")
        else:
            self._refuse(400, "the request is not valid HTTP/1.1")

    def _watch_head(self, *, begun: bool) -> None:
        awaiting = self.conn.their_state is h11.IDLE and not self.transport.is_closing()
        if not awaiting:
            self._stop_head_clock()
        elif begun and self.head_timer is None:
            self.head_timer = self.loop.call_later(self.head_seconds, self._head_overdue)

    def _stop_head_clock(self) -> None:
        if self.head_timer is not None:
            self.head_timer.cancel()
            self.head_timer = None

    def _head_overdue(self) -> None:
        self.head_timer = None
        if self.transport.is_closing() or self.linger_timer is not None or self.conn.their_state is not h11.IDLE:
            return
        received = len(self.conn.trailing_data[0])
        if not received:
            self.conn.send(h11.ConnectionClosed())
            self.transport.close()
            return
        client = f"{self.client[0]}:{self.client[1]}" if self.client else None
        log.warning("api.head_timeout", client=client, received=received, seconds=self.head_seconds)
        late = f"the request head did not arrive within {self.head_seconds:g} s (RUNSTATE_API_READ_TIMEOUT)"
        self._refuse(408, late)

    def _refuse(self, status: int, message: str) -> None:
        """Answer `status` in the one error shape and close: h11 lets a server answer before a request."""
        body = bytes(error_response(status, CODES[status], message).body)
        headers = [
            (b"content-type", b"application/json"),
            (b"content-length", str(len(body)).encode()),
            (b"connection", b"close"),
        ]
        for event in (
            h11.Response(status_code=status, headers=headers, reason=STATUS_PHRASES[status]),
            h11.Data(data=body),
            h11.EndOfMessage(),
        ):
            self.transport.write(self.conn.send(event))
        self._close_lingering()

    def _close_lingering(self) -> None:
        """Our half closed after the answer; the client's read and dropped until it closes it, at
        most LINGER_SECONDS (see the module's docstring)."""
        self._stop_head_clock()
        if not self.transport.can_write_eof():
            self.transport.close()
            return
        self.transport.write_eof()
        self.linger_timer = self.loop.call_later(LINGER_SECONDS, self.transport.close)
