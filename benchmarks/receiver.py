"""A webhook receiver that is never the bottleneck: a raw asyncio protocol answering 200 at once.

    python -m benchmarks.receiver PORT_FILE

Runs as its own process (pinned by the caller to the other core). It reads only what it must
(the end of the head, `content-length`, `webhook-id`), notes when each `webhook-id` first
arrived (wall clock, comparable with Redis TIME on this machine), and answers `200` with no
body. A POST to `/hang` is read and never answered (nor noted): a hanging endpoint. `GET /arrivals` answers
the arrivals noted so far as JSON (`{webhook-id: seconds}`) and forgets them.
"""

import asyncio
import sys
import time
from pathlib import Path

import orjson

OK = b"HTTP/1.1 200 OK\r\ncontent-length: 0\r\n\r\n"
ARRIVALS: dict[str, float] = {}


def _header(head: bytes, name: bytes) -> bytes | None:
    at = head.find(b"\r\n" + name + b":")
    if at < 0:
        return None
    start = at + len(name) + 3
    return head[start : head.find(b"\r\n", start)].strip()


class Receiver(asyncio.Protocol):
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport: asyncio.Transport = transport  # type: ignore[assignment]
        self.buffer = b""

    def data_received(self, data: bytes) -> None:
        self.buffer += data
        while (end := self.buffer.find(b"\r\n\r\n")) >= 0:
            head = self.buffer[:end].lower()
            length = int(_header(head, b"content-length") or 0)
            if len(self.buffer) < end + 4 + length:
                return  # the body is not all here yet
            self.buffer = self.buffer[end + 4 + length :]
            self._answer(head)

    def _answer(self, head: bytes) -> None:
        if head.startswith(b"get /arrivals"):
            body = orjson.dumps(ARRIVALS)
            ARRIVALS.clear()
            self.transport.write(b"HTTP/1.1 200 OK\r\ncontent-length: %d\r\n\r\n%s" % (len(body), body))
            return
        if head.startswith(b"post /hang"):
            return  # never answered, nor noted: what is measured is what the healthy ones got
        webhook_id = _header(head, b"webhook-id")  # lowercased with the head: ids here are lowercase
        if webhook_id is not None:
            ARRIVALS.setdefault(webhook_id.decode(), time.time())
        self.transport.write(OK)


async def main(port_file: Path) -> None:
    loop = asyncio.get_running_loop()
    server = await loop.create_server(Receiver, "127.0.0.1", 0, backlog=4096)
    port_file.write_text(str(server.sockets[0].getsockname()[1]))
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    asyncio.run(main(Path(sys.argv[1])))
