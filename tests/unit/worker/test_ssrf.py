"""The SSRF guard (docs/design.md, "Webhooks"): which webhook URLs check_url refuses, in every spelling, and why.

No test here opens a socket or asks a real resolver about a name: resolvers are fakes.
"""

import asyncio
import socket
from collections.abc import Callable

import pytest

from worker.webhooks.ssrf import Target, UnresolvableTarget, UnsafeTarget, check_url, check_url_async, resolve_host


def no_lookup(host: str, port: int) -> list[str]:
    raise AssertionError(f"an IP literal must not be resolved, but {host}:{port} was")


def answers(*addresses: str) -> Callable[[str, int], list[str]]:
    def resolve(host: str, port: int) -> list[str]:
        return list(addresses)

    return resolve


def refusal(url: str, *, allow_private: bool = False, resolve: Callable[[str, int], list[str]] = no_lookup) -> str:
    with pytest.raises(UnsafeTarget) as caught:
        check_url(url, allow_private=allow_private, resolve=resolve)
    assert caught.value.reason
    assert str(caught.value) == caught.value.reason
    return caught.value.reason


# (host as written in the URL, the address it means, the words naming the rule, refused even with allow_private)
FORBIDDEN = [
    # loopback, in every spelling
    ("127.0.0.1", "127.0.0.1", "a loopback address", False),
    ("127.255.255.254", "127.255.255.254", "a loopback address", False),
    ("127.1", "127.0.0.1", "a loopback address", False),
    ("2130706433", "127.0.0.1", "a loopback address", False),
    ("0x7f000001", "127.0.0.1", "a loopback address", False),
    ("0x7F000001", "127.0.0.1", "a loopback address", False),
    ("0x7f.0.0.1", "127.0.0.1", "a loopback address", False),
    ("0177.1", "127.0.0.1", "a loopback address", False),
    ("0177.0.1", "127.0.0.1", "a loopback address", False),
    ("017700000001", "127.0.0.1", "a loopback address", False),
    ("127.0.0.1.", "127.0.0.1", "a loopback address", False),
    ("[::1]", "::1", "a loopback address", False),
    ("[0:0:0:0:0:0:0:1]", "::1", "a loopback address", False),
    ("[::ffff:127.0.0.1]", "::ffff:7f00:1", "the IPv4-mapped form of 127.0.0.1, a loopback address", False),
    ("[::ffff:7f00:1]", "::ffff:7f00:1", "the IPv4-mapped form of 127.0.0.1, a loopback address", False),
    ("[::127.0.0.1]", "::7f00:1", "the IPv4-compatible form of 127.0.0.1, a loopback address", False),
    ("[::ffff:0:127.0.0.1]", "::ffff:0:7f00:1", "the IPv4-translated form of 127.0.0.1, a loopback address", False),
    ("[2002:7f00:1::]", "2002:7f00:1::", "the 6to4 form of 127.0.0.1, a loopback address", False),
    ("[64:ff9b::127.0.0.1]", "64:ff9b::7f00:1", "the NAT64 form of 127.0.0.1, a loopback address", False),
    # private
    ("10.0.0.5", "10.0.0.5", "a private address", False),
    ("167772165", "10.0.0.5", "a private address", False),
    ("0xa000005", "10.0.0.5", "a private address", False),
    ("012.5", "10.0.0.5", "a private address", False),  # octal 012 is 10
    ("10.5", "10.0.0.5", "a private address", False),
    ("172.16.0.1", "172.16.0.1", "a private address", False),
    ("172.31.255.255", "172.31.255.255", "a private address", False),
    ("192.168.1.1", "192.168.1.1", "a private address", False),
    ("[fc00::1]", "fc00::1", "a private address", False),
    ("[fd12:3456::1]", "fd12:3456::1", "a private address", False),
    ("[fec0::1]", "fec0::1", "a private address", False),
    ("[64:ff9b:1::a00:5]", "64:ff9b:1::a00:5", "a private address", False),
    ("[::ffff:10.0.0.5]", "::ffff:a00:5", "the IPv4-mapped form of 10.0.0.5, a private address", False),
    ("[::ffff:192.168.0.1]", "::ffff:c0a8:1", "the IPv4-mapped form of 192.168.0.1, a private address", False),
    ("[64:ff9b::10.0.0.5]", "64:ff9b::a00:5", "the NAT64 form of 10.0.0.5, a private address", False),
    ("[2002:a00:5::1]", "2002:a00:5::1", "the 6to4 form of 10.0.0.5, a private address", False),
    # link-local, and the cloud metadata endpoints in it (always refused)
    ("169.254.1.1", "169.254.1.1", "a link-local address", False),
    ("[fe80::1]", "fe80::1", "a link-local address", False),
    ("[::ffff:169.254.1.1]", "::ffff:a9fe:101", "the IPv4-mapped form of 169.254.1.1, a link-local address", False),
    ("169.254.169.254", "169.254.169.254", "a cloud metadata address", True),
    ("2852039166", "169.254.169.254", "a cloud metadata address", True),
    ("0xa9fea9fe", "169.254.169.254", "a cloud metadata address", True),
    ("0251.0376.0124776", "169.254.169.254", "a cloud metadata address", True),
    ("169.254.43518", "169.254.169.254", "a cloud metadata address", True),
    ("[::ffff:169.254.169.254]", "::ffff:a9fe:a9fe", "IPv4-mapped form of 169.254.169.254, a cloud metadata", True),
    ("[64:ff9b::169.254.169.254]", "64:ff9b::a9fe:a9fe", "NAT64 form of 169.254.169.254, a cloud metadata", True),
    ("169.254.170.2", "169.254.170.2", "a cloud metadata address", True),
    ("[fd00:ec2::254]", "fd00:ec2::254", "a cloud metadata address", True),
    ("168.63.129.16", "168.63.129.16", "a cloud metadata address", True),  # Azure's, in a public range
    ("100.100.100.200", "100.100.100.200", "a cloud metadata address", True),  # Alibaba's
    ("192.0.0.192", "192.0.0.192", "a cloud metadata address", True),  # Oracle's
    ("100.100.100.200", "100.100.100.200", "a cloud metadata address", True),
    # carrier-grade NAT
    ("100.64.0.1", "100.64.0.1", "a carrier-grade NAT address", False),
    ("100.127.255.254", "100.127.255.254", "a carrier-grade NAT address", False),
    ("[::ffff:100.64.0.1]", "::ffff:6440:1", "the IPv4-mapped form of 100.64.0.1, a carrier-grade NAT address", False),
    # multicast (always)
    ("224.0.0.1", "224.0.0.1", "a multicast address", True),
    ("239.255.255.250", "239.255.255.250", "a multicast address", True),
    ("0xe0000001", "224.0.0.1", "a multicast address", True),
    ("[ff02::1]", "ff02::1", "a multicast address", True),
    ("[::ffff:224.0.0.1]", "::ffff:e000:1", "the IPv4-mapped form of 224.0.0.1, a multicast address", True),
    # unspecified (always)
    ("0.0.0.0", "0.0.0.0", "an unspecified address", True),  # noqa: S104
    ("0", "0.0.0.0", "an unspecified address", True),  # noqa: S104
    ("0x0", "0.0.0.0", "an unspecified address", True),  # noqa: S104
    ("0.1.2.3", "0.1.2.3", "an unspecified address", True),
    ("[::]", "::", "an unspecified address", True),
    ("[::ffff:0.0.0.0]", "::ffff:0:0", "the IPv4-mapped form of 0.0.0.0, an unspecified address", True),
    # broadcast (always) and reserved
    ("255.255.255.255", "255.255.255.255", "the broadcast address", True),
    ("4294967295", "255.255.255.255", "the broadcast address", True),
    ("240.0.0.1", "240.0.0.1", "a reserved address", False),
    ("192.88.99.1", "192.88.99.1", "a reserved address", False),
    ("[100::1]", "100::1", "a reserved address", False),
    ("[4000::1]", "4000::1", "a reserved address", False),
    ("[::8.8.8.8]", "::808:808", "a deprecated IPv4-compatible address", False),
    # IETF protocol assignments, Teredo, documentation, benchmarking
    ("192.0.0.8", "192.0.0.8", "an IETF protocol assignment address", False),
    ("[2001:4:112::1]", "2001:4:112::1", "an IETF protocol assignment address", False),
    ("[2001:0:4136:e378:8000:63bf:3fff:fdd2]", "2001:0:4136:e378:8000:63bf:3fff:fdd2", "a Teredo address", False),
    ("192.0.2.1", "192.0.2.1", "a documentation address", False),
    ("198.51.100.7", "198.51.100.7", "a documentation address", False),
    ("203.0.113.9", "203.0.113.9", "a documentation address", False),
    ("[2001:db8::1]", "2001:db8::1", "a documentation address", False),
    ("[3fff::1]", "3fff::1", "a documentation address", False),
    ("198.18.0.1", "198.18.0.1", "a benchmarking address", False),
    ("198.19.255.255", "198.19.255.255", "a benchmarking address", False),
    ("[2001:2::1]", "2001:2::1", "a benchmarking address", False),
]


@pytest.mark.parametrize(("host", "address", "rule", "always"), FORBIDDEN, ids=[row[0] for row in FORBIDDEN])
def test_a_forbidden_literal_is_refused_naming_the_rule_and_the_address(
    host: str, address: str, rule: str, always: bool
) -> None:
    for scheme in ("http", "https"):
        reason = refusal(f"{scheme}://{host}:8443/hook?token=s3cret")
        assert reason.startswith(f"{scheme}://{host.lower()}:8443 points at {address}, ")
        assert rule in reason
        assert "s3cret" not in reason, "the path and query may hold secrets; reasons name only the origin"


@pytest.mark.parametrize(("host", "address", "rule", "always"), FORBIDDEN, ids=[row[0] for row in FORBIDDEN])
def test_allow_private_allows_all_but_unspecified_multicast_broadcast_and_metadata(
    host: str, address: str, rule: str, always: bool
) -> None:
    url = f"https://{host}/hook"
    if always:
        reason = refusal(url, allow_private=True)
        assert rule in reason
        assert reason.endswith("(refused even when private targets are allowed)")
    else:
        target = check_url(url, allow_private=True, resolve=no_lookup)
        assert target.port == 443
        assert target.host == host.strip("[]").lower()


@pytest.mark.parametrize(("host", "address", "rule", "always"), FORBIDDEN, ids=[row[0] for row in FORBIDDEN])
def test_a_name_resolving_to_a_forbidden_address_is_refused(host: str, address: str, rule: str, always: bool) -> None:
    reason = refusal("https://x.example/hook", resolve=answers(address))
    assert reason.startswith(f"https://x.example resolves to {address}, ")
    assert rule in reason


def test_the_example_reason_from_the_issue() -> None:
    assert refusal("https://x.example", resolve=answers("10.0.0.5")) == (
        "https://x.example resolves to 10.0.0.5, a private address"
    )


PUBLIC = [
    ("93.184.216.34", "93.184.216.34"),
    ("1572395042", "93.184.216.34"),  # decimal spelling of a public address
    ("0x5db8d822", "93.184.216.34"),
    ("8.8.8.8", "8.8.8.8"),
    ("1.1.1.1", "1.1.1.1"),
    ("11.0.0.1", "11.0.0.1"),
    ("172.15.255.255", "172.15.255.255"),
    ("172.32.0.0", "172.32.0.0"),
    ("100.63.255.255", "100.63.255.255"),
    ("100.128.0.0", "100.128.0.0"),
    ("169.253.255.255", "169.253.255.255"),
    ("223.255.255.254", "223.255.255.254"),
    ("[2606:4700::1]", "2606:4700::1"),
    ("[2a00:1450:4001::200e]", "2a00:1450:4001::200e"),
    ("[::ffff:93.184.216.34]", "93.184.216.34"),  # connected to as plain IPv4
    ("[64:ff9b::93.184.216.34]", "64:ff9b::5db8:d822"),
    ("[2002:5db8:d822::1]", "2002:5db8:d822::1"),
]


@pytest.mark.parametrize(("host", "address"), PUBLIC, ids=[row[0] for row in PUBLIC])
@pytest.mark.parametrize("allow_private", [False, True])
def test_a_public_address_is_allowed(host: str, address: str, allow_private: bool) -> None:
    url = f"https://{host}/hook"
    assert check_url(url, allow_private=allow_private, resolve=no_lookup) == Target(
        url=url, scheme="https", host=host.strip("[]").lower(), port=443, address=address
    )


@pytest.mark.parametrize(
    "url",
    [
        "ftp://x.example/hook",
        "file:///etc/passwd",
        "gopher://x.example:70/_",
        "ws://x.example/",
        "wss://x.example/",
        "javascript:alert(1)",
        "data:text/plain,hi",
        "dict://x.example:11211/",
        "httpx://x.example/",
        "//x.example/hook",
        "x.example/hook",
    ],
)
@pytest.mark.parametrize("allow_private", [False, True])
def test_only_http_and_https_are_allowed(url: str, allow_private: bool) -> None:
    reason = refusal(url, allow_private=allow_private, resolve=answers("93.184.216.34"))
    assert reason.endswith("only http and https are allowed")


def test_the_scheme_is_case_insensitive() -> None:
    target = check_url("HTTPS://X.Example:8443/Hook", allow_private=False, resolve=answers("93.184.216.34"))
    assert (target.scheme, target.host, target.port) == ("https", "x.example", 8443)


@pytest.mark.parametrize(
    "url",
    [
        "https://user:pw@x.example/hook",
        "https://user@x.example/hook",
        "https://:pw@x.example/hook",
        "https://x.example\\@93.184.216.34/hook",  # a backslash that browsers read as a path
        "http://93.184.216.34@x.example/",
    ],
)
def test_user_info_is_refused_without_echoing_it(url: str) -> None:
    reason = refusal(url, allow_private=True, resolve=answers("93.184.216.34"))
    assert "user info" in reason
    assert "pw" not in reason


@pytest.mark.parametrize("url", ["http:///hook", "https://", "http:hook", "https://:443/"])
def test_an_empty_host_is_refused(url: str) -> None:
    reason = refusal(url, allow_private=True)
    assert "no host" in reason or "not valid" in reason


@pytest.mark.parametrize(
    ("url", "words"),
    [
        ("http://0177.0.0.1/", "not valid"),  # httpx itself refuses four-part octal, so it is never sent
        ("http://[fe80::1%25eth0]/", "IPv6 zone"),
        ("http://a b/", "invalid host name"),
        ("http://x.example%2f@y/", "user info"),
        ("http://x.example:0/", "port 0"),
        ("http://x.example:65536/", "port 65536"),
        ("http://[1.2.3]/", "not valid"),
        ("http://x.example:abc/", "not valid"),
        ("http://\u2488.example/", "not valid"),
        ("http://a..b/", "invalid host name"),
    ],
)
def test_malformed_urls_are_refused(url: str, words: str) -> None:
    assert words in refusal(url, allow_private=True, resolve=answers("93.184.216.34"))


@pytest.mark.parametrize(
    "addresses",
    [
        ("93.184.216.34", "10.0.0.5"),
        ("10.0.0.5", "93.184.216.34"),
        ("2606:4700::1", "93.184.216.34", "::1"),
        ("93.184.216.34", "169.254.169.254"),
    ],
)
def test_a_name_is_refused_when_any_of_its_addresses_is_forbidden(addresses: tuple[str, ...]) -> None:
    reason = refusal("https://hooks.example/", resolve=answers(*addresses))
    assert reason.startswith("https://hooks.example resolves to ")
    assert "93.184.216.34" not in reason
    assert "2606:4700::1" not in reason


def test_with_allow_private_a_mixed_name_connects_to_its_first_address() -> None:
    target = check_url("https://hooks.example/", allow_private=True, resolve=answers("10.0.0.5", "93.184.216.34"))
    assert target.address == "10.0.0.5"


def test_the_first_address_is_chosen_and_duplicates_are_dropped() -> None:
    resolve = answers("2606:4700::1", "2606:4700::1", "93.184.216.34")
    assert check_url("https://hooks.example/", allow_private=False, resolve=resolve).address == "2606:4700::1"
    resolve = answers("::ffff:93.184.216.34")
    assert check_url("https://hooks.example/", allow_private=False, resolve=resolve).address == "93.184.216.34"


def test_the_resolver_is_asked_once_with_the_ascii_host_and_the_port() -> None:
    calls: list[tuple[str, int]] = []

    def resolve(host: str, port: int) -> list[str]:
        calls.append((host, port))
        return ["93.184.216.34"]

    target = check_url("https://Bücher.example/hook", allow_private=False, resolve=resolve)
    assert calls == [("xn--bcher-kva.example", 443)]
    assert target == Target(
        url="https://Bücher.example/hook",
        scheme="https",
        host="xn--bcher-kva.example",
        port=443,
        address="93.184.216.34",
    )
    check_url("http://hooks.example:8080/", allow_private=False, resolve=resolve)
    assert calls[-1] == ("hooks.example", 8080)


@pytest.mark.parametrize("url", ["http://127.0.0.1/", "http://2130706433/", "http://[::1]/", "http://93.184.216.34/"])
def test_an_ip_literal_is_never_resolved(url: str) -> None:
    check_url(url, allow_private=True, resolve=no_lookup)


def test_a_name_that_does_not_resolve_is_refused_as_unresolvable() -> None:
    def fails(host: str, port: int) -> list[str]:
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    with pytest.raises(UnresolvableTarget) as caught:
        check_url("https://gone.example/", allow_private=False, resolve=fails)
    assert caught.value.reason == "gone.example does not resolve (Name or service not known)"
    assert isinstance(caught.value, UnsafeTarget)  # `webhooks add` refuses it like any other unsafe target

    with pytest.raises(UnresolvableTarget, match="no addresses"):
        check_url("https://gone.example/", allow_private=False, resolve=answers())


def test_a_resolver_answer_that_is_not_an_address_is_refused() -> None:
    assert "not an IP address" in refusal("https://x.example/", resolve=answers("x.example"))


def test_unsafe_target_is_a_value_error_with_a_reason() -> None:
    error = UnsafeTarget("https://x.example resolves to 10.0.0.5, a private address")
    assert isinstance(error, ValueError)
    assert error.reason == str(error) == "https://x.example resolves to 10.0.0.5, a private address"


def test_the_default_resolver_asks_getaddrinfo_for_tcp(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[tuple[object, ...]] = []

    def fake_getaddrinfo(host: str, port: int, *args: object, **kwargs: object) -> list[tuple[object, ...]]:
        seen.append((host, port, kwargs))
        return [
            (socket.AF_INET6, socket.SOCK_STREAM, 6, "", ("2606:4700::1", port, 0, 0)),
            (socket.AF_INET, socket.SOCK_STREAM, 6, "", ("10.0.0.5", port)),
        ]

    monkeypatch.setattr(socket, "getaddrinfo", fake_getaddrinfo)
    assert resolve_host("hooks.example", 443) == ["2606:4700::1", "10.0.0.5"]
    assert seen == [("hooks.example", 443, {"type": socket.SOCK_STREAM, "proto": socket.IPPROTO_TCP})]
    assert "resolves to 10.0.0.5, a private address" in refusal("https://hooks.example/", resolve=resolve_host)


def test_the_default_resolver_reads_numeric_hosts_without_a_lookup() -> None:
    assert resolve_host("127.0.0.1", 80) == ["127.0.0.1"]


def test_check_url_async_runs_the_same_check() -> None:
    target = asyncio.run(check_url_async("https://x.example/", allow_private=False, resolve=answers("93.184.216.34")))
    assert target.address == "93.184.216.34"
    with pytest.raises(UnsafeTarget, match="a private address"):
        asyncio.run(check_url_async("https://x.example/", allow_private=False, resolve=answers("10.0.0.5")))
