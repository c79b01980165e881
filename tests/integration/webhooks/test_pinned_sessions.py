"""PinnedSessions (the sender's aiohttp client) against real loopback servers: the checked address is
the one connected to, also by a new connection, and the name is never looked up again (a DNS rebinding
has no second answer to give); Host, SNI and certificate checks use the name; proxy variables and
redirects are ignored, and a session that did follow a redirect could not leave the checked host.

Every connection goes to 127.0.0.1 or ::1, and a guard on socket.getaddrinfo fails any name lookup, so
no test can send a packet (or a DNS query) anywhere else.
"""

import asyncio
import socket
import ssl
from collections.abc import Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import uvloop

from tests.support.loopback import PROXY_VARIABLES, Rebinder, Seen, Server, free_port
from worker.webhooks.pinned import PinnedResolver, PinnedSessions, request_url
from worker.webhooks.ssrf import Target, check_url

PLAIN = ssl.create_default_context()


LOOPS = pytest.mark.parametrize("run", [asyncio.run, uvloop.run], ids=["asyncio", "uvloop"])  # the sender's: uvloop


def post(
    target: Target, body: bytes = b"{}", tls: ssl.SSLContext = PLAIN, run: Callable[[Any], int] = asyncio.run
) -> int:
    async def main() -> int:
        sessions = PinnedSessions(tls)
        try:
            return await sessions.post(target, body, {"content-type": "application/json"})
        finally:
            await sessions.close()

    return run(main())


def test_it_connects_to_the_checked_address_and_never_resolves_again(server: Server, lookups: list[str]) -> None:
    resolve = Rebinder("127.0.0.1")
    target = check_url(f"http://hooks.test:{server.port}/hook?x=1&y=%2F", allow_private=True, resolve=resolve)
    assert post(target, b'{"type": "run.status_changed"}') == 200
    assert resolve.calls == 1
    assert lookups == []
    assert server.seen == [
        Seen("POST", "/hook?x=1&y=%2F", f"hooks.test:{server.port}", b'{"type": "run.status_changed"}')
    ]


def test_a_new_connection_to_the_same_target_is_pinned_too(server: Server, lookups: list[str]) -> None:
    resolve = Rebinder("127.0.0.1")  # a second lookup would answer 203.0.113.66
    target = check_url(f"http://hooks.test:{server.port}/hook", allow_private=True, resolve=resolve)

    async def main() -> list[int]:
        sessions = PinnedSessions(PLAIN)
        try:  # the test server closes every connection after its answer: the second post opens another
            return [await sessions.post(target, body, {}) for body in (b"1", b"2")]
        finally:
            await sessions.close()

    assert asyncio.run(main()) == [200, 200]
    assert (resolve.calls, lookups) == (1, [])
    assert [(s.path, s.host, s.body) for s in server.seen] == [
        ("/hook", f"hooks.test:{server.port}", b"1"),
        ("/hook", f"hooks.test:{server.port}", b"2"),
    ]


def test_an_ipv6_loopback_target_is_reached_by_name(server6: Server, lookups: list[str]) -> None:
    target = check_url(f"http://hooks.test:{server6.port}/v6", allow_private=True, resolve=Rebinder("::1"))
    assert post(target) == 200
    assert [(s.path, s.host) for s in server6.seen] == [("/v6", f"hooks.test:{server6.port}")]
    assert lookups == []


def test_proxy_variables_are_ignored(server: Server, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in PROXY_VARIABLES:
        monkeypatch.setenv(name, f"http://127.0.0.1:{free_port()}")
    for name in ("NO_PROXY", "no_proxy"):
        monkeypatch.delenv(name, raising=False)
    target = check_url(f"http://127.0.0.1:{server.port}/direct", allow_private=True)

    async def through_a_session_that_trusts_the_environment() -> None:  # the control: the variables work
        async with aiohttp.ClientSession(trust_env=True) as session, session.get(target.url):
            pass

    with pytest.raises(aiohttp.ClientConnectionError):
        asyncio.run(through_a_session_that_trusts_the_environment())
    assert server.seen == []
    assert post(target) == 200
    assert [s.path for s in server.seen] == ["/direct"]


def test_a_redirect_is_returned_not_followed(server: Server) -> None:
    target = check_url(f"http://hooks.test:{server.port}/redirect", allow_private=True, resolve=Rebinder("127.0.0.1"))
    assert post(target) == 302
    assert [s.path for s in server.seen] == ["/redirect"]


def test_a_session_that_followed_a_redirect_could_not_leave_the_checked_host(server: Server) -> None:
    target = check_url(f"http://hooks.test:{server.port}/redirect", allow_private=True, resolve=Rebinder("127.0.0.1"))

    async def follow() -> None:  # the sender never follows one; its resolver would refuse to, were it asked
        connector = aiohttp.TCPConnector(resolver=PinnedResolver(target), use_dns_cache=False)
        async with aiohttp.ClientSession(connector=connector) as session, session.get(target.url):
            pass

    with pytest.raises(aiohttp.ClientConnectorError) as refused:
        asyncio.run(follow())
    assert str(refused.value.os_error) == "elsewhere.test is not the checked target hooks.test"
    assert [s.path for s in server.seen] == ["/redirect"]


def test_the_resolver_answers_only_the_checked_host() -> None:
    target = Target(url="https://x.example/", scheme="https", host="x.example", port=443, address="93.184.216.34")
    resolver = PinnedResolver(target)
    answers = asyncio.run(resolver.resolve("x.example", 443))
    assert [(a["hostname"], a["host"], a["port"], a["family"]) for a in answers] == [
        ("x.example", "93.184.216.34", 443, socket.AF_INET)
    ]
    with pytest.raises(OSError, match=r"elsewhere\.example is not the checked target x\.example"):
        asyncio.run(resolver.resolve("elsewhere.example", 443))


def test_the_request_url_is_rebuilt_from_the_checked_parts() -> None:
    target = check_url("http://[::1]:8080/a%20b?q=%C3%BC", allow_private=True)
    assert str(request_url(target)) == "http://[::1]:8080/a%20b?q=%C3%BC"
    named = Target(url="https://Hooks.Example/p?t=1", scheme="https", host="hooks.example", port=443, address="1.2.3.4")
    assert (request_url(named).host, request_url(named).port, request_url(named).raw_path_qs) == (
        "hooks.example",
        443,
        "/p?t=1",
    )


@LOOPS
def test_tls_uses_the_name_for_sni_certificate_checks_and_host(
    tls_server: Server, certificate: tuple[Path, Path], lookups: list[str], run: Callable[[Any], int]
) -> None:
    trust = ssl.create_default_context(cafile=str(certificate[0]))
    target = check_url(f"https://hooks.test:{tls_server.port}/tls", allow_private=True, resolve=Rebinder("127.0.0.1"))
    assert post(target, tls=trust, run=run) == 200
    assert tls_server.server_names == ["hooks.test"]
    assert [(s.path, s.host) for s in tls_server.seen] == [("/tls", f"hooks.test:{tls_server.port}")]
    assert lookups == []


@LOOPS
def test_tls_verifies_the_certificate_against_the_name_not_the_address(
    tls_server: Server, certificate: tuple[Path, Path], run: Callable[[Any], int]
) -> None:
    trust = ssl.create_default_context(cafile=str(certificate[0]))
    target = check_url(f"https://other.test:{tls_server.port}/", allow_private=True, resolve=Rebinder("127.0.0.1"))
    with pytest.raises(aiohttp.ClientConnectorCertificateError, match=r"other\.test"):
        post(target, tls=trust, run=run)
    assert tls_server.seen == []
