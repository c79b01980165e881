"""The real `runstate serve` at the socket, before the app sees a request: a head trickled in
slower than RUNSTATE_API_READ_TIMEOUT (slowloris on the head) is cut with 408, a silent
connection is closed, a keep-alive connection still serves a later request, and a head over
16 KiB is refused with 431 however it arrives."""

import select
import socket
import time
from collections.abc import Iterator

import orjson
import pytest

from tests.support.redis_servers import own_redis
from tests.support.servekit import Served, serving

READ_TIMEOUT = 1.0
MARGIN = 2.0  # a busy machine's scheduling: the server closes at READ_TIMEOUT
EARLY = 0.01  # an event loop may run a timer this much before its time (seen: 20 µs)
HEAD_CAP = 16_384
LINGER_SECONDS = 2.0  # worker/api/protocol.py's


@pytest.fixture(scope="module")
def port(tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    """One server for the module, on a Redis of its own; its log is checked for tracebacks at the end."""
    with (
        own_redis(tmp_path_factory.mktemp("redis")) as redis,
        serving(redis.url, workers=0, RUNSTATE_API_READ_TIMEOUT=str(READ_TIMEOUT)) as served,
    ):
        yield _port(served)


def _port(served: Served) -> int:
    return int(served.url.rsplit(":", 1)[1])


def _connect(port: int) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port))
    sock.settimeout(READ_TIMEOUT + MARGIN)
    return sock


def _until_closed(sock: socket.socket) -> tuple[int, dict[str, object]]:
    """The status and JSON body of the server's last answer, read until it closes."""
    data = b""
    while chunk := sock.recv(65536):
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    return int(head.split(b" ", 2)[1]), orjson.loads(body)


def _response(sock: socket.socket) -> tuple[int, bytes]:
    """One response on a connection kept alive: its status and head (headers lowercased)."""
    data = b""
    while b"\r\n\r\n" not in data:
        data += sock.recv(65536)
    head, _, body = data.partition(b"\r\n\r\n")
    length = next(
        int(line.split(b":")[1]) for line in head.lower().split(b"\r\n") if line.startswith(b"content-length")
    )
    while len(body) < length:
        body += sock.recv(65536)
    return int(head.split(b" ", 2)[1]), head.lower()


def _get(sock: socket.socket) -> tuple[int, bytes]:
    sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
    return _response(sock)


def _trickle(sock: socket.socket, started: float) -> float:
    """A head sent a byte every 0.2 s (it never ends) until the server answers; seconds since `started`."""
    sock.sendall(b"POST /v1/events HTTP/1.1\r\nHost: x\r\nX-Slow: ")
    while not select.select([sock], [], [], 0.2)[0]:
        assert time.monotonic() - started < READ_TIMEOUT + MARGIN, "the head was never cut"
        sock.sendall(b"a")
    return time.monotonic() - started


TIMED_OUT = {
    "error": {
        "code": "INVALID_INPUT",
        "message": "the request head did not arrive within 1 s (RUNSTATE_API_READ_TIMEOUT)",
    }
}


def test_a_head_trickled_byte_by_byte_is_cut_at_the_read_timeout_with_408(port: int) -> None:
    started = time.monotonic()
    with _connect(port) as sock:
        took = _trickle(sock, started)
        assert _until_closed(sock) == (408, TIMED_OUT)
    assert READ_TIMEOUT - EARLY <= took < READ_TIMEOUT + MARGIN


def test_a_later_head_on_a_kept_alive_connection_is_timed_from_its_first_byte(port: int) -> None:
    with _connect(port) as sock:
        assert _get(sock)[0] == 200
        started = time.monotonic()
        took = _trickle(sock, started)
        assert _until_closed(sock) == (408, TIMED_OUT)
    assert READ_TIMEOUT - EARLY <= took < READ_TIMEOUT + MARGIN


def test_a_cut_head_is_logged_in_one_line_without_its_contents(redis_url: str) -> None:
    head = b"GET /v1/runs HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer tok_a"  # and no end
    with (
        serving(redis_url, workers=0, RUNSTATE_API_READ_TIMEOUT=str(READ_TIMEOUT)) as served,
        _connect(_port(served)) as sock,
    ):
        sock.sendall(head)
        assert _until_closed(sock)[0] == 408
        host, port = sock.getsockname()
    cut = [orjson.loads(line) for line in served.log if "api.head_timeout" in line]
    assert [{key: value for key, value in line.items() if key != "timestamp"} for line in cut] == [
        {
            "event": "api.head_timeout",
            "level": "warning",
            "logger": "runstate.api",
            "client": f"{host}:{port}",
            "received": len(head),
            "seconds": READ_TIMEOUT,
        }
    ]
    assert not [line for line in served.log if "tok_a" in line]


def test_a_connection_that_sends_nothing_is_closed_at_the_read_timeout_without_an_answer(port: int) -> None:
    started = time.monotonic()
    with _connect(port) as sock:
        assert sock.recv(65536) == b""  # the close itself; a socket timeout fails the test
    assert READ_TIMEOUT - EARLY <= time.monotonic() - started < READ_TIMEOUT + MARGIN


def test_a_kept_alive_connection_serves_a_second_request_after_a_pause_past_the_read_timeout(port: int) -> None:
    with _connect(port) as sock:
        status, head = _get(sock)
        assert (status, b"connection: close" in head) == (200, False)
        # idle for longer than the head deadline, but under uvicorn's 5 s keep-alive: the idle
        # wait is keep-alive's to time, so the elapsed time is the point, not a condition
        time.sleep(READ_TIMEOUT * 1.5)
        sock.sendall(b"GET /healthz HTTP/1.1\r\n")
        time.sleep(READ_TIMEOUT / 2)  # a head that takes a while, within the deadline
        sock.sendall(b"Host: x\r\n\r\n")
        assert _response(sock)[0] == 200


def _padded(size: int, end: bytes = b"\r\n\r\n") -> bytes:
    """A GET /healthz head of exactly `size` bytes, padded by one header."""
    start = b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\nX-Pad: "
    return start + b"a" * (size - len(start) - len(end)) + end


def test_a_head_of_16_kib_is_served(port: int) -> None:
    with _connect(port) as sock:
        sock.sendall(_padded(HEAD_CAP))
        assert _response(sock)[0] == 200


def test_a_head_over_16_kib_arriving_whole_is_refused_with_431(port: int) -> None:
    # h11 caps only an unfinished head: one byte over, the whole head is in before any check
    with _connect(port) as sock:
        sock.sendall(_padded(HEAD_CAP + 1))
        assert _until_closed(sock) == (
            431,
            {"error": {"code": "INVALID_INPUT", "message": "request head is 16385 bytes; at most 16384 are allowed"}},
        )


def test_an_unfinished_head_past_16_kib_is_refused_with_431(port: int) -> None:
    with _connect(port) as sock:
        # one byte past the cap and no end: the server reads every byte sent before it answers
        sock.sendall(_padded(HEAD_CAP + 1, end=b""))
        assert _until_closed(sock) == (
            431,
            {
                "error": {
                    "code": "INVALID_INPUT",
                    "message": "request head is over 16384 bytes; at most 16384 are allowed",
                }
            },
        )


def test_a_head_still_arriving_past_16_kib_gets_its_431_not_a_reset(port: int) -> None:
    """The server answers while more of the head is on its way: it reads and drops the rest
    (a lingering close, as nginx's) rather than closing on unread bytes, which makes the kernel
    reset the connection and drop the answer before the client reads it."""
    with _connect(port) as sock:
        sock.sendall(_padded(HEAD_CAP + 1, end=b""))
        select.select([sock], [], [], READ_TIMEOUT + MARGIN)  # the answer is in
        sock.sendall(b"a" * 65536)  # and the client, not reading yet, sends more of its head
        time.sleep(0.2)  # it reads a moment later: a reset would have come by then
        assert _until_closed(sock)[0] == 431


def test_a_refused_client_that_never_stops_sending_is_closed_after_the_linger(port: int) -> None:
    with _connect(port) as sock:
        sock.sendall(_padded(HEAD_CAP + 1, end=b""))
        select.select([sock], [], [], READ_TIMEOUT + MARGIN)
        refused = time.monotonic()
        assert _send_until_refused(sock, deadline=refused + LINGER_SECONDS + MARGIN) in (
            BrokenPipeError,
            ConnectionResetError,
        )
        assert time.monotonic() - refused > LINGER_SECONDS - EARLY  # not before the linger is over


def _send_until_refused(sock: socket.socket, deadline: float) -> type[OSError] | None:
    """What stops a client that sends without end: the error, or None if it was never stopped."""
    try:
        while time.monotonic() < deadline:
            sock.send(b"a" * 4096)
    except OSError as error:
        return type(error)
    return None
