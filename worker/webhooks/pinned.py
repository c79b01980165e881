"""aiohttp sessions pinned to checked addresses: how the sender reaches a webhook target.

The SSRF guard (`ssrf.check_url`) resolves a URL's host once per attempt and names the one
checked address. Here each checked (scheme, host, port, address) gets a session of its own
whose resolver answers exactly that address for exactly that host and refuses any other, so
the connection goes where the check looked, never through a second lookup a DNS rebinding
could answer differently. Connections are kept alive per checked address: when the name
starts resolving elsewhere, the next attempt gets a new session, and the old one is closed
once idle. The request URL is rebuilt from the target's parts (the host as the guard read
it, its path and query as httpx encodes them), so no difference between two URL parsers can
send a request somewhere the guard did not look. The name stays in the request: TLS SNI,
certificate checks and the Host header all use it. No proxy (`trust_env=False`), no
redirect followed, no cookies kept, the body never read.
"""

import asyncio
import socket
import ssl
import time
from collections import OrderedDict
from functools import lru_cache

import aiohttp
import httpx
from aiohttp.abc import AbstractResolver, ResolveResult
from yarl import URL

from worker.webhooks.ssrf import Target

MAX_SESSIONS = 1024  # targets kept open at once; the least recently used beyond are closed
IDLE_SECONDS = 60.0  # a session unused this long is closed (its name may resolve elsewhere now)


class PinnedResolver(AbstractResolver):
    """Answers the target's checked address for the target's host, and refuses every other host."""

    def __init__(self, target: Target) -> None:
        self.target = target

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        if host != self.target.host:
            raise OSError(f"{host} is not the checked target {self.target.host}")
        address = self.target.address
        return [
            {
                "hostname": host,  # the name: aiohttp uses it for SNI and the certificate check
                "host": address,
                "port": port,
                "family": socket.AF_INET6 if ":" in address else socket.AF_INET,
                "proto": 0,
                "flags": 0,
            }
        ]

    async def close(self) -> None:
        return None


@lru_cache(maxsize=4096)
def request_url(target: Target) -> URL:
    """The URL to send: the target's scheme, host and port, with the path and query httpx read."""
    path, _, query = httpx.URL(target.url).raw_path.decode("ascii").partition("?")
    host = f"[{target.host}]" if ":" in target.host else target.host
    return URL.build(scheme=target.scheme, host=host, port=target.port, path=path, query_string=query, encoded=True)


def origin(target: Target) -> str:
    """What a log may say about where a delivery went: scheme and host, never the path or query."""
    return f"{target.scheme}://{target.host}"


@lru_cache(maxsize=4096)
def origin_of(url: str) -> str:
    """`origin` of a URL not checked yet (nor perhaps valid): never its user info, path or query."""
    try:
        parsed = httpx.URL(url)
    except (httpx.InvalidURL, UnicodeError, ValueError):
        return "an invalid URL"
    return f"{parsed.scheme}://{parsed.raw_host.decode('ascii')}"


def _session(target: Target, tls: ssl.SSLContext) -> aiohttp.ClientSession:
    connector = aiohttp.TCPConnector(
        resolver=PinnedResolver(target), use_dns_cache=False, ssl=tls, limit=0, enable_cleanup_closed=False
    )
    return aiohttp.ClientSession(
        connector=connector,
        timeout=aiohttp.ClientTimeout(total=None),  # the sender's asyncio.timeout bounds the whole attempt
        trust_env=False,
        cookie_jar=aiohttp.DummyCookieJar(),
        auto_decompress=False,
        skip_auto_headers=("Accept", "Accept-Encoding"),
    )


class PinnedSessions:
    """One pinned session per checked target, kept while used; `post` sends one attempt."""

    def __init__(self, tls: ssl.SSLContext) -> None:
        self.tls = tls
        self._open: OrderedDict[Target, tuple[aiohttp.ClientSession, float]] = OrderedDict()
        self._closing: set[asyncio.Task[None]] = set()

    async def post(self, target: Target, body: bytes, headers: dict[str, str]) -> int:
        """The status the target answered; the body is never read: the status is the answer."""
        async with self._get(target).post(
            request_url(target), data=body, headers=headers, allow_redirects=False
        ) as response:
            return response.status

    def _get(self, target: Target) -> aiohttp.ClientSession:
        now = time.monotonic()
        found = self._open.pop(target, None)
        session = found[0] if found is not None else _session(target, self.tls)
        self._open[target] = (session, now)  # the most recently used last
        while len(self._open) > MAX_SESSIONS or next(iter(self._open.values()))[1] < now - IDLE_SECONDS:
            _, (old, _) = self._open.popitem(last=False)
            self._close_later(old)
        return session

    def _close_later(self, session: aiohttp.ClientSession) -> None:
        task = asyncio.create_task(session.close())
        self._closing.add(task)
        task.add_done_callback(self._closing.discard)

    async def close(self) -> None:
        sessions = [session for session, _ in self._open.values()]
        self._open.clear()
        await asyncio.gather(*(s.close() for s in sessions), *self._closing, return_exceptions=True)
