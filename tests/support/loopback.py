"""Loopback HTTP(S) servers that record what reached them, and the resolvers and lookup guard
that keep every SSRF test on 127.0.0.1 and ::1 (the fixtures are in tests/integration/webhooks/conftest.py)."""

import socket
import ssl
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

TIMEOUT = 5.0  # seconds a test server waits for its thread to end


@dataclass
class Seen:
    method: str
    path: str
    host: str | None
    body: bytes


@dataclass
class Server:
    port: int
    seen: list[Seen] = field(default_factory=list)
    server_names: list[str | None] = field(default_factory=list)  # SNI, when serving TLS


class Handler(BaseHTTPRequestHandler):
    server: "RecordingServer"

    def _answer(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        self.server.record.seen.append(Seen(self.command, self.path, self.headers.get("Host"), body))
        if self.path == "/redirect":
            self.send_response(302)
            self.send_header("Location", f"http://elsewhere.test:{self.server.record.port}/landed")
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"ok")

    do_GET = do_POST = _answer

    def log_message(self, format: str, *args: Any) -> None:  # quiet
        pass


class RecordingServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, host: str, family: socket.AddressFamily) -> None:
        self.address_family = family
        super().__init__((host, 0), Handler)
        self.record = Server(port=self.server_address[1])


def serve(host: str, family: socket.AddressFamily, tls: ssl.SSLContext | None = None) -> Iterator[Server]:
    server = RecordingServer(host, family)
    if tls is not None:

        def note_sni(sock: ssl.SSLObject, name: str | None, context: ssl.SSLContext) -> None:
            server.record.server_names.append(name)

        tls.sni_callback = note_sni
        server.socket = tls.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield server.record
    finally:
        server.shutdown()
        server.server_close()
        thread.join(TIMEOUT)


class Rebinder:
    """A resolver whose first answer is address and whose later answers name another host: a DNS rebinding."""

    def __init__(self, address: str, later: str = "203.0.113.66") -> None:
        self.address, self.later, self.calls = address, later, 0

    def __call__(self, host: str, port: int) -> list[str]:
        self.calls += 1
        return [self.address] if self.calls == 1 else [self.later]


def free_port() -> int:
    """A loopback port nothing listens on (until a test starts something there)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


PROXY_VARIABLES = ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy")
