"""A real HTTP receiver on loopback that records what it was sent, and answers as told."""

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes
    at: float


@dataclass
class Receiver:
    port: int
    received: list[Received] = field(default_factory=list)
    # path -> list of answers, used in turn (the last repeats): a status code, "hang" (30 s, then 200)
    # or "drip" (a status line trickled out a byte every 0.4 s, never finished)
    answers: dict[str, list[int | str]] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def url(self, path: str, host: str = "127.0.0.1") -> str:
        return f"http://{host}:{self.port}{path}"

    def on(self, path: str) -> list[Received]:
        with self.lock:
            return [r for r in self.received if r.path == path]

    def _answer(self, path: str) -> int | str:
        with self.lock:
            answers = self.answers.get(path, [200])
            seen = sum(1 for r in self.received if r.path == path)
            return answers[min(seen - 1, len(answers) - 1)]


@contextmanager
def receiver() -> Iterator[Receiver]:
    state: list[Receiver] = []

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("content-length", 0)))
            me = state[0]
            with me.lock:
                me.received.append(
                    Received(self.path, {k.lower(): v for k, v in self.headers.items()}, body, time.monotonic())
                )
            answer = me._answer(self.path)
            if answer == "drip":  # an answer that never ends: one byte at a time, for 10 s
                for byte in b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n"[:25]:
                    self.wfile.write(bytes([byte]))
                    self.wfile.flush()
                    time.sleep(0.4)
                self.close_connection = True
                return
            if answer == "hang":
                time.sleep(30)
                answer = 200
            self.send_response(int(answer))
            if 300 <= int(answer) < 400:
                self.send_header("location", "http://127.0.0.1:9/elsewhere")
            self.send_header("content-length", "0")
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    state.append(Receiver(server.server_address[1]))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield state[0]
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)
