"""Fixtures of the SSRF connection tests: a guard that fails every name lookup, loopback servers
(IPv4, IPv6, TLS with a certificate for hooks.test only)."""

import ipaddress
import shutil
import socket
import ssl
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.loopback import Server, serve


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
