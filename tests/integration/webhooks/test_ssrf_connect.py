"""pinned_client against real loopback servers: it connects to the checked address, never looks the name up
again, keeps the name for Host, SNI and certificate checks, ignores proxy variables, and follows no redirect.

Every connection goes to 127.0.0.1 or ::1, and a guard on socket.getaddrinfo fails any name lookup, so no
test can send a packet (or a DNS query) anywhere else.
"""

import asyncio
import ipaddress
import shutil
import socket
import ssl
import subprocess
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest

from worker.webhooks.ssrf import PinnedTransport, Target, UnsafeTarget, check_url, pinned_client

TIMEOUT = 5.0


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


@pytest.fixture
def lookups(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Names anything asked the system resolver about; each such lookup fails, so none leaves the machine."""
    names: list[str] = []
    real = socket.getaddrinfo

    def guarded(host: Any, *args: Any, **kwargs: Any) -> Any:
        text = host.decode() if isinstance(host, bytes) else str(host)
        try:
            ipaddress.ip_address(text.split("%")[0])
        except ValueError:
            names.append(text)
            raise socket.gaierror(socket.EAI_NONAME, f"test guard: no lookup of {text}") from None
        return real(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", guarded)
    return names


@pytest.fixture
def server(lookups: list[str]) -> Iterator[Server]:
    yield from serve("127.0.0.1", socket.AF_INET)


@pytest.fixture
def server6(lookups: list[str]) -> Iterator[Server]:
    try:
        probe = socket.socket(socket.AF_INET6, socket.SOCK_STREAM)
    except OSError:
        pytest.skip("no IPv6 on this machine")
    with probe:
        try:
            probe.bind(("::1", 0))
        except OSError:
            pytest.skip("no ::1 on this machine")
    yield from serve("::1", socket.AF_INET6)


class Rebinder:
    """A resolver whose first answer is address and whose later answers name another host: a DNS rebinding."""

    def __init__(self, address: str, later: str = "203.0.113.66") -> None:
        self.address, self.later, self.calls = address, later, 0

    def __call__(self, host: str, port: int) -> list[str]:
        self.calls += 1
        return [self.address] if self.calls == 1 else [self.later]


def run(coro: Callable[[], Any]) -> Any:
    return asyncio.run(coro())


def test_the_client_connects_to_the_checked_address_and_never_resolves_again(
    server: Server, lookups: list[str]
) -> None:
    resolve = Rebinder("127.0.0.1")
    target = check_url(f"http://hooks.test:{server.port}/hook?x=1", allow_private=True, resolve=resolve)
    assert target == Target(
        url=f"http://hooks.test:{server.port}/hook?x=1",
        scheme="http",
        host="hooks.test",
        port=server.port,
        address="127.0.0.1",
    )

    async def main() -> list[int]:
        async with pinned_client(target, TIMEOUT) as client:
            first = await client.post(target.url, content=b'{"type": "run.status_changed"}')
            again = await client.get(f"http://hooks.test:{server.port}/again")  # a new connection, still pinned
            return [first.status_code, again.status_code]

    assert run(main) == [200, 200]
    assert resolve.calls == 1, "the name must be resolved once, by check_url, and never by the client"
    assert lookups == [], "no name lookup may happen after the check"
    assert server.seen == [
        Seen("POST", "/hook?x=1", f"hooks.test:{server.port}", b'{"type": "run.status_changed"}'),
        Seen("GET", "/again", f"hooks.test:{server.port}", b""),
    ]


def test_without_allow_private_the_same_loopback_name_is_refused(server: Server) -> None:
    with pytest.raises(UnsafeTarget, match=r"resolves to 127\.0\.0\.1, a loopback address"):
        check_url(f"http://hooks.test:{server.port}/hook", allow_private=False, resolve=Rebinder("127.0.0.1"))
    assert server.seen == []


def test_an_ipv6_loopback_target_is_reached_by_name(server6: Server, lookups: list[str]) -> None:
    target = check_url(f"http://hooks.test:{server6.port}/v6", allow_private=True, resolve=Rebinder("::1"))
    assert target.address == "::1"

    async def main() -> int:
        async with pinned_client(target, TIMEOUT) as client:
            return (await client.get(target.url)).status_code

    assert run(main) == 200
    assert [(s.path, s.host) for s in server6.seen] == [("/v6", f"hooks.test:{server6.port}")]
    assert lookups == []


def closed_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


PROXY_VARIABLES = ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy", "all_proxy")


def test_proxy_variables_are_ignored(server: Server, monkeypatch: pytest.MonkeyPatch) -> None:
    proxy = f"http://127.0.0.1:{closed_port()}"
    for name in PROXY_VARIABLES:
        monkeypatch.setenv(name, proxy)
    for name in ("NO_PROXY", "no_proxy"):
        monkeypatch.delenv(name, raising=False)
    target = check_url(f"http://127.0.0.1:{server.port}/direct", allow_private=True)

    async def through_default_client() -> None:  # the control: an ordinary client obeys the variables
        async with httpx.AsyncClient(timeout=TIMEOUT) as client:
            await client.get(target.url)

    with pytest.raises(httpx.ConnectError):
        run(through_default_client)
    assert server.seen == []

    async def main() -> int:
        async with pinned_client(target, TIMEOUT) as client:
            return (await client.get(target.url)).status_code

    assert run(main) == 200
    assert [s.path for s in server.seen] == ["/direct"]


def test_a_redirect_is_returned_not_followed(server: Server) -> None:
    target = check_url(f"http://hooks.test:{server.port}/redirect", allow_private=True, resolve=Rebinder("127.0.0.1"))

    async def main() -> httpx.Response:
        async with pinned_client(target, TIMEOUT) as client:
            return await client.post(target.url, content=b"{}")

    response = run(main)
    assert response.status_code == 302
    assert response.headers["location"] == f"http://elsewhere.test:{server.port}/landed"
    assert [s.path for s in server.seen] == ["/redirect"]


def test_the_transport_refuses_other_origins_even_for_a_client_that_follows_redirects(server: Server) -> None:
    target = check_url(f"http://hooks.test:{server.port}/redirect", allow_private=True, resolve=Rebinder("127.0.0.1"))

    async def follow() -> None:
        async with httpx.AsyncClient(transport=PinnedTransport(target), follow_redirects=True, timeout=TIMEOUT) as c:
            await c.get(target.url)

    with pytest.raises(UnsafeTarget, match=rf"http://elsewhere\.test:{server.port} is not the checked target"):
        run(follow)
    assert [s.path for s in server.seen] == ["/redirect"]

    for other in (
        f"http://other.test:{server.port}/",
        f"http://hooks.test:{closed_port()}/",
        f"https://hooks.test:{server.port}/",
        f"http://127.0.0.1:{server.port}/",
    ):

        async def stray(url: str = other) -> None:
            async with pinned_client(target, TIMEOUT) as client:
                await client.get(url)

        with pytest.raises(UnsafeTarget, match="is not the checked target"):
            run(stray)
    assert len(server.seen) == 1


def test_pinned_client_settings() -> None:
    target = Target(url="https://x.example/", scheme="https", host="x.example", port=443, address="93.184.216.34")

    async def main() -> None:
        async with pinned_client(target, 7.5) as client:
            assert client.follow_redirects is False
            assert client.trust_env is False
            assert client.timeout == httpx.Timeout(7.5)

    run(main)


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A self-signed certificate for hooks.test (and only that name), made by the openssl command."""
    openssl = shutil.which("openssl")
    if openssl is None:
        pytest.skip("the openssl command is not installed")
    folder = tmp_path_factory.mktemp("tls")
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run(
        [
            openssl,
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-keyout",
            str(key),
            "-out",
            str(cert),
            "-days",
            "2",
            "-subj",
            "/CN=hooks.test",
            "-addext",
            "subjectAltName=DNS:hooks.test",
        ],
        check=True,
        capture_output=True,
    )
    return cert, key


@pytest.fixture
def tls_server(certificate: tuple[Path, Path], lookups: list[str]) -> Iterator[Server]:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(*certificate)
    yield from serve("127.0.0.1", socket.AF_INET, tls=context)


def test_tls_uses_the_name_for_sni_certificate_checks_and_host(
    tls_server: Server, certificate: tuple[Path, Path], lookups: list[str]
) -> None:
    trust = ssl.create_default_context(cafile=str(certificate[0]))
    target = check_url(f"https://hooks.test:{tls_server.port}/tls", allow_private=True, resolve=Rebinder("127.0.0.1"))

    async def main() -> int:
        async with pinned_client(target, TIMEOUT, verify=trust) as client:
            return (await client.post(target.url, content=b"{}")).status_code

    assert run(main) == 200
    assert tls_server.server_names == ["hooks.test"]
    assert [(s.path, s.host) for s in tls_server.seen] == [("/tls", f"hooks.test:{tls_server.port}")]
    assert lookups == []


def test_tls_verifies_the_certificate_against_the_name_not_the_address(
    tls_server: Server, certificate: tuple[Path, Path]
) -> None:
    trust = ssl.create_default_context(cafile=str(certificate[0]))
    target = check_url(f"https://other.test:{tls_server.port}/", allow_private=True, resolve=Rebinder("127.0.0.1"))

    async def main() -> None:
        async with pinned_client(target, TIMEOUT, verify=trust) as client:
            await client.get(target.url)

    with pytest.raises(httpx.ConnectError, match="certificate"):
        run(main)
    assert tls_server.seen == []
