"""The real `runstate serve` process at the socket: an unauthenticated or oversized body is
refused from its headers alone (no byte of it read), and a body trickled in byte by byte
(slowloris) is cut at RUNSTATE_API_READ_TIMEOUT with 408."""

import socket
import subprocess
import sys
import time
from collections.abc import Iterator

import httpx
import orjson
import pytest

from tests.support.loopback import free_port
from tests.support.processes import cli_env, wait_until
from tests.support.redis_servers import own_redis

READ_TIMEOUT = 1.0
TOKEN = "tok_a"  # a test token


@pytest.fixture(scope="module")
def serve(tmp_path_factory: pytest.TempPathFactory) -> Iterator[int]:
    """One server for the module (it starts in seconds on a busy machine), on a Redis of its own."""
    with own_redis(tmp_path_factory.mktemp("redis")) as redis:
        yield from _serving(redis.url)


def _serving(redis_url: str) -> Iterator[int]:
    port = free_port()
    env = cli_env(redis_url, RUNSTATE_API_TOKENS=f"{TOKEN}:acct_a", RUNSTATE_API_READ_TIMEOUT=str(READ_TIMEOUT))
    process = subprocess.Popen(
        [sys.executable, "-m", "worker", "serve", "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    wait_until(lambda: _healthy(port), timeout=60)
    yield port
    process.terminate()
    process.wait(timeout=30)


def _healthy(port: int) -> bool:
    try:
        return httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2).status_code == 200
    except httpx.TransportError:
        return False


def _answer(sock: socket.socket) -> tuple[int, dict[str, object]]:
    """The status and JSON body of the one answer the server sends, read until it closes."""
    sock.settimeout(10)
    data = b""
    while chunk := sock.recv(65536):
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    return int(head.split(b" ", 2)[1]), orjson.loads(body)


def _headers(port: int, path: str, length: int, token: str | None) -> socket.socket:
    sock = socket.create_connection(("127.0.0.1", port))
    auth = f"Authorization: Bearer {token}\r\n" if token else ""
    head = f"POST {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n{auth}Content-Length: {length}\r\n\r\n"
    sock.sendall(head.encode())
    return sock


@pytest.mark.parametrize("path", ["/v1/webhooks", "/v1/events"])
def test_a_body_without_a_token_is_refused_before_a_byte_of_it_is_read(serve: int, path: str) -> None:
    with _headers(serve, path, 150_000_000, token=None) as sock:  # 150 MB declared, none sent
        assert _answer(sock) == (
            401,
            {"error": {"code": "AUTHORIZATION_ERROR", "message": "a valid Bearer token is required"}},
        )


@pytest.mark.parametrize(("path", "cap"), [("/v1/webhooks", 65_536), ("/v1/events", 1_048_576)])
def test_an_oversized_body_is_refused_from_its_content_length(serve: int, path: str, cap: int) -> None:
    with _headers(serve, path, 150_000_000, token=TOKEN) as sock:
        assert _answer(sock) == (
            413,
            {"error": {"code": "INVALID_INPUT", "message": f"body is 150000000 bytes; at most {cap} are allowed"}},
        )


def test_a_chunked_body_past_the_cap_is_cut_at_the_cap(serve: int) -> None:
    def chunks() -> Iterator[bytes]:
        yield b'{"url": "https://h.example.com/", "secret": "'
        for _ in range(100):  # 100 KB, no Content-Length
            yield b"x" * 1024

    answer = httpx.post(
        f"http://127.0.0.1:{serve}/v1/webhooks", content=chunks(), headers={"authorization": f"Bearer {TOKEN}"}
    )
    assert (answer.status_code, answer.json()) == (
        413,
        {"error": {"code": "INVALID_INPUT", "message": "body is over 65536 bytes; at most 65536 are allowed"}},
    )


@pytest.mark.parametrize("path", ["/v1/webhooks", "/v1/events"])
def test_a_body_trickled_byte_by_byte_is_cut_at_the_read_timeout(serve: int, path: str) -> None:
    started = time.monotonic()
    with _headers(serve, path, 1_000, token=TOKEN) as sock:
        # a byte every 0.2 s (1,000 would take 200 s), until just before the timeout: then nothing
        # more, so the server has read every byte sent when it answers and closes (a byte still
        # unread at close would reset the connection and could discard the answer)
        while time.monotonic() - started < READ_TIMEOUT - 0.3:
            sock.sendall(b" ")
            time.sleep(0.2)
        sock.settimeout(READ_TIMEOUT + 3)
        status, body = _answer(sock)
        took = time.monotonic() - started
    assert READ_TIMEOUT <= took < READ_TIMEOUT + 3
    assert (status, body) == (
        408,
        {
            "error": {
                "code": "INVALID_INPUT",
                "message": "the body did not arrive within 1 s (RUNSTATE_API_READ_TIMEOUT)",
            }
        },
    )
