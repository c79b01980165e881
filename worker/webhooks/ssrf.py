"""SSRF guard for webhook targets (docs/design.md, "Webhooks").

`check_url` parses a subscription's URL with httpx's parser, resolves its host once, and
refuses it when any address is one a webhook must not reach; it returns a `Target` naming the
one checked address. The sender (`worker/webhooks/pinned.py`) then connects to exactly that
address — no second lookup that a DNS rebinding could answer differently — while the request
keeps the host name, so TLS SNI, certificate verification and the Host header all use the
name. Proxy variables are ignored and redirects are never followed.

Refused unless private targets are allowed (`RUNSTATE_WEBHOOK_ALLOW_PRIVATE`):
loopback (127.0.0.0/8, ::1), private (10/8, 172.16/12, 192.168/16, fc00::/7, fec0::/10,
the local-use NAT64 prefix 64:ff9b:1::/48), link-local (169.254/16, fe80::/10), carrier-grade
NAT (100.64/10), reserved (240/4, 192.88.99/24, 100::/64, IPv6 outside 2000::/3),
IETF protocol assignments (192.0.0/24, 2001::/23 including Teredo), documentation
(192.0.2/24, 198.51.100/24, 203.0.113/24, 2001:db8::/32, 3fff::/20) and benchmarking
(198.18/15, 2001:2::/48).

Refused even when private targets are allowed, because no webhook is ever served there:
unspecified ("this network", 0.0.0.0/8, ::), multicast (224/4, ff00::/8), the broadcast
address 255.255.255.255, and the cloud metadata endpoints (169.254.169.254, 169.254.170.2,
169.254.170.23, 100.100.100.200, fd00:ec2::254, fd00:ec2::23, Azure's 168.63.129.16, Oracle's
192.0.0.192), which hand out credentials.

IPv6 forms that embed an IPv4 address (IPv4-mapped ::ffff:0:0/96, IPv4-translated
::ffff:0:0:0/96, IPv4-compatible ::/96, NAT64 64:ff9b::/96, 6to4 2002::/16) are judged by the
IPv4 address they carry. IPv4 hosts are read in every spelling inet_aton accepts (decimal
2130706433, hex 0x7f000001, octal 0177.1, short 127.1), as the system resolver would read them.
"""

import asyncio
import ipaddress
import re
import socket
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache

import httpx

Address = ipaddress.IPv4Address | ipaddress.IPv6Address
Network = ipaddress.IPv4Network | ipaddress.IPv6Network
Resolver = Callable[[str, int], list[str]]

SCHEMES = {"http": 80, "https": 443}  # the only schemes allowed, with their default ports


class UnsafeTarget(ValueError):
    """A webhook URL that must not be contacted; `reason` names the rule and the offending value."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class UnresolvableTarget(UnsafeTarget):
    """The host did not resolve, so it could not be checked; unlike other refusals this may pass later."""


@dataclass(frozen=True)
class Target:
    url: str  # the URL as given
    scheme: str  # "http" or "https"
    host: str  # as the request carries it: lowercase, IDNA-encoded, IPv6 without brackets
    port: int  # explicit or the scheme's default
    address: str  # the one checked IP address to connect to


@dataclass(frozen=True)
class _Range:
    network: Network
    kind: str  # completes "… points at <address>, <kind>"
    always: bool  # refused even when private targets are allowed


def _ranges(kind: str, *cidrs: str, always: bool = False) -> list[_Range]:
    return [_Range(ipaddress.ip_network(cidr), kind, always) for cidr in cidrs]


_METADATA = frozenset(
    ipaddress.ip_address(a)
    for a in (
        *("169.254.169.254", "169.254.170.2", "169.254.170.23", "100.100.100.200", "fd00:ec2::254", "fd00:ec2::23"),
        *("168.63.129.16", "192.0.0.192"),  # Azure's wire server (a public range), Oracle Cloud's metadata
    )
)

_IPV4 = [
    *_ranges("an unspecified address", "0.0.0.0/8", always=True),
    *_ranges("a loopback address", "127.0.0.0/8"),
    *_ranges("a private address", "10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16"),
    *_ranges("a link-local address", "169.254.0.0/16"),
    *_ranges("a carrier-grade NAT address", "100.64.0.0/10"),
    *_ranges("a multicast address", "224.0.0.0/4", always=True),
    *_ranges("the broadcast address", "255.255.255.255/32", always=True),
    *_ranges("a reserved address", "240.0.0.0/4", "192.88.99.0/24"),
    *_ranges("an IETF protocol assignment address", "192.0.0.0/24"),
    *_ranges("a documentation address", "192.0.2.0/24", "198.51.100.0/24", "203.0.113.0/24"),
    *_ranges("a benchmarking address", "198.18.0.0/15"),
]

_IPV6 = [
    *_ranges("an unspecified address", "::/128", always=True),
    *_ranges("a loopback address", "::1/128"),
    *_ranges("a multicast address", "ff00::/8", always=True),
    *_ranges("a link-local address", "fe80::/10"),
    *_ranges("a private address", "fc00::/7", "fec0::/10", "64:ff9b:1::/48"),
    *_ranges("a reserved address", "100::/64"),
    *_ranges("a Teredo address", "2001::/32"),
    *_ranges("a benchmarking address", "2001:2::/48"),
    *_ranges("a documentation address", "2001:db8::/32", "3fff::/20"),
    *_ranges("an IETF protocol assignment address", "2001::/23"),
]
_GLOBAL_UNICAST = ipaddress.IPv6Network("2000::/3")
_IPV4_COMPATIBLE = ipaddress.IPv6Network("::/96")
_IPV4_TRANSLATED = ipaddress.IPv6Network("::ffff:0:0:0/96")
_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")

_HOST_NAME = re.compile(r"[a-z0-9_-]+(\.[a-z0-9_-]+)*\.?")
_INET_ATON = re.compile(r"[0-9a-fx.]+")  # the characters of inet_aton's spellings, so no trailing junk slips in


def resolve_host(host: str, port: int) -> list[str]:
    """The addresses the system resolver gives for host, in its order of preference."""
    infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, proto=socket.IPPROTO_TCP)
    return [str(info[4][0]) for info in infos]


def check_url(url: str, *, allow_private: bool, resolve: Resolver = resolve_host) -> Target:
    """The checked target of a webhook URL, or UnsafeTarget naming why it is refused.

    Names are resolved exactly once, by `resolve`; IP literals are not resolved at all. Every
    address must pass, and the first is the one to connect to. Blocking: see `check_url_async`.
    """
    _, host, port, _, literal = _parse(url)
    if literal is not None:
        return _check_literal(url, allow_private)
    return _check(url, _resolve(host, port, resolve), "resolves to", allow_private)


@lru_cache(maxsize=4096)
def _check_literal(url: str, allow_private: bool) -> Target:
    """An IP literal's check, remembered: the same URL always gets the same answer (a refusal is
    not remembered, and is rare)."""
    literal = _parse(url)[4]
    assert literal is not None
    return _check(url, [literal], "points at", allow_private)


def _check(url: str, addresses: list[Address], verb: str, allow_private: bool) -> Target:
    scheme, host, port, origin, _ = _parse(url)
    for address in addresses:
        found = _classify(address)
        if found is not None and (found.always or not allow_private):
            also = " (refused even when private targets are allowed)" if found.always and allow_private else ""
            raise UnsafeTarget(f"{origin} {verb} {address}, {found.kind}{also}")
    first = addresses[0]
    if isinstance(first, ipaddress.IPv6Address) and first.ipv4_mapped is not None:
        first = first.ipv4_mapped  # the same destination, reachable without a dual-stack socket
    return Target(url=url, scheme=scheme, host=host, port=port, address=str(first))


class _LookupNeeded(Exception):
    """Raised by the resolver `check_url_async` checks with first: the host is a name."""

    def __init__(self, host: str, port: int) -> None:
        super().__init__(host)
        self.host, self.port = host, port


class SharedLookups:
    """Name lookups in worker threads, one at a time per name: attempts to one host at once
    share its answer (or its error), each still checking it."""

    def __init__(self) -> None:
        self._pending: dict[tuple[str, int], asyncio.Future[list[str]]] = {}

    async def resolve(self, resolve: Resolver, host: str, port: int) -> list[str]:
        pending = self._pending.get((host, port))
        if pending is None:
            pending = asyncio.ensure_future(asyncio.to_thread(resolve, host, port))
            self._pending[(host, port)] = pending
            pending.add_done_callback(lambda _: self._pending.pop((host, port), None))
        return await asyncio.shield(pending)


async def check_url_async(
    url: str, *, allow_private: bool, resolve: Resolver = resolve_host, lookups: SharedLookups | None = None
) -> Target:
    """check_url, with the name lookup (if any) in a worker thread, so a slow DNS answer does not
    stall an event loop; an IP literal needs none and is checked at once."""

    def must_not_block(host: str, port: int) -> list[str]:
        raise _LookupNeeded(host, port)

    try:
        return check_url(url, allow_private=allow_private, resolve=must_not_block)
    except _LookupNeeded as needed:
        host, port = needed.host, needed.port
    try:
        answers = await (lookups or SharedLookups()).resolve(resolve, host, port)
    except (OSError, UnicodeError) as exc:
        failed = exc

        def replay(host: str, port: int) -> list[str]:
            raise failed

        return check_url(url, allow_private=allow_private, resolve=replay)
    return check_url(url, allow_private=allow_private, resolve=lambda _host, _port: answers)


@lru_cache(maxsize=4096)
def _parse(url: str) -> tuple[str, str, int, str, Address | None]:
    """Scheme, host, port, origin and the IP literal (if the host is one) of a URL whose form is
    allowed; remembered, since a subscription's URL is checked again at every attempt."""
    try:
        parsed = httpx.URL(url)
    except (httpx.InvalidURL, UnicodeError, ValueError) as exc:
        raise UnsafeTarget(f"the URL is not valid ({exc})") from None
    scheme, host = parsed.scheme, parsed.raw_host.decode("ascii")
    if scheme not in SCHEMES:
        used = f"uses the scheme {scheme!r}" if scheme else "has no scheme"
        raise UnsafeTarget(f"the URL {used}; only http and https are allowed")
    if parsed.userinfo:
        raise UnsafeTarget(f"the URL to {host or 'no host'} carries user info (credentials); it is not allowed")
    if not host:
        raise UnsafeTarget("the URL names no host")
    origin = f"{scheme}://{parsed.netloc.decode('ascii')}"  # no path or query: they may hold secrets
    port = SCHEMES[scheme] if parsed.port is None else parsed.port
    if not 0 < port < 65536:
        raise UnsafeTarget(f"{origin} names port {port}, outside 1-65535")
    literal = _literal(host, origin)
    if literal is None and not _HOST_NAME.fullmatch(host):
        raise UnsafeTarget(f"{origin} has an invalid host name {host!r}")
    return scheme, host, port, origin, literal


def _literal(host: str, origin: str) -> Address | None:
    """The address host spells, if it is an IP literal (in any spelling the resolver accepts)."""
    if ":" in host:  # httpx only lets an IPv6 literal in brackets carry a colon in the host
        if "%" in host:
            raise UnsafeTarget(f"{origin} names an IPv6 zone; zoned addresses are not allowed")
        try:
            return ipaddress.IPv6Address(host)
        except ValueError:
            raise UnsafeTarget(f"{origin} names an invalid IPv6 address") from None
    spelled = host.removesuffix(".")
    if _INET_ATON.fullmatch(spelled):
        try:
            return ipaddress.IPv4Address(socket.inet_aton(spelled))
        except OSError:
            return None
    return None


def _resolve(host: str, port: int, resolve: Resolver) -> list[Address]:
    try:
        answers = resolve(host, port)
    except (OSError, UnicodeError) as exc:
        detail = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise UnresolvableTarget(f"{host} does not resolve ({detail})") from None
    addresses: list[Address] = []
    for answer in answers:
        try:
            address = ipaddress.ip_address(answer)
        except ValueError:
            raise UnsafeTarget(f"{host} resolves to {answer!r}, which is not an IP address") from None
        if address not in addresses:
            addresses.append(address)
    if not addresses:
        raise UnresolvableTarget(f"{host} does not resolve (no addresses)")
    return addresses


@lru_cache(maxsize=4096)
def _classify(address: Address) -> _Range | None:
    """The forbidden range address falls in, if any."""
    if isinstance(address, ipaddress.IPv6Address):
        address = ipaddress.IPv6Address(int(address))  # drop any zone: ranges and metadata ignore it
    if address in _METADATA:
        return _Range(ipaddress.ip_network(address), "a cloud metadata address", always=True)
    if isinstance(address, ipaddress.IPv4Address):
        return next((r for r in _IPV4 if address in r.network), None)
    embedded = _embedded_ipv4(address)
    if embedded is not None:
        form, ipv4 = embedded
        inner = _classify(ipv4)
        if inner is not None:
            return _Range(inner.network, f"the {form} form of {ipv4}, {inner.kind}", inner.always)
        if address in _IPV4_COMPATIBLE:
            return _Range(_IPV4_COMPATIBLE, "a deprecated IPv4-compatible address", always=False)
        return None  # a public IPv4 address behind a mapping, NAT64 or 6to4
    found = next((r for r in _IPV6 if address in r.network), None)
    if found is None and address not in _GLOBAL_UNICAST:
        return _Range(_GLOBAL_UNICAST, "a reserved address (outside global unicast 2000::/3)", always=False)
    return found


def _embedded_ipv4(address: ipaddress.IPv6Address) -> tuple[str, ipaddress.IPv4Address] | None:
    low32 = ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    if address.ipv4_mapped is not None:
        return "IPv4-mapped", address.ipv4_mapped
    if address in _IPV4_TRANSLATED:
        return "IPv4-translated", low32
    if address in _NAT64:
        return "NAT64", low32
    if address.sixtofour is not None:
        return "6to4", address.sixtofour
    if address in _IPV4_COMPATIBLE and int(address) > 1:  # :: and ::1 are themselves
        return "IPv4-compatible", low32
    return None
