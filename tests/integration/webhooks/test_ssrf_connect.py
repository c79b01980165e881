"""pinned_client against real loopback servers: it connects to the checked address, never looks the name up
again, keeps the name for Host, SNI and certificate checks, ignores proxy variables, and follows no redirect.

Every connection goes to 127.0.0.1 or ::1, and a guard on socket.getaddrinfo fails any name lookup, so no
test can send a packet (or a DNS query) anywhere else.
"""

import asyncio
import ssl
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.support.loopback import PROXY_VARIABLES, Rebinder, Seen, Server, closed_port
from worker.webhooks.ssrf import PinnedTransport, Target, UnsafeTarget, check_url, pinned_client

TIMEOUT = 5.0


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
