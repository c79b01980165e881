"""What the SDK tests share: a certificate authority and a server certificate for 127.0.0.1 made
here (cryptography), a real `runstate serve` over https on a free port, and runs in two accounts
published through it and applied as a worker would."""

import datetime
import ssl
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from ipaddress import IPv4Address
from pathlib import Path
from typing import Any

import httpx
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from tests.support.loopback import free_port
from tests.support.processes import cli_env, stop, wait_until
from tests.support.publishing import held
from worker.runtime import Runtime

TOKENS = "tok_a:acct_a,tok_b:acct_b"


@dataclass(frozen=True)
class Served:
    url: str  # https://127.0.0.1:<port>
    ca: Path  # the PEM certificate authority that signed the server's certificate

    def trust(self) -> ssl.SSLContext:
        """A client context that trusts the test authority only."""
        return ssl.create_default_context(cafile=str(self.ca))


def _certificate(subject: str, key: ec.EllipticCurvePrivateKey, issuer: x509.Name) -> x509.CertificateBuilder:
    now = datetime.datetime.now(datetime.UTC)
    return (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)]))
        .issuer_name(issuer)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=1))
    )


def make_certificates(directory: Path) -> tuple[Path, Path, Path]:
    """(CA certificate, server certificate, server key), PEM files in `directory`."""
    ca_key, key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "runstate test CA")])
    ca = (
        _certificate("runstate test CA", ca_key, ca_name)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    leaf = (
        _certificate("127.0.0.1", key, ca.subject)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(IPv4Address("127.0.0.1"))]), critical=False)
        .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    paths = directory / "ca.pem", directory / "server.pem", directory / "server.key"
    paths[0].write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    paths[1].write_bytes(leaf.public_bytes(serialization.Encoding.PEM))
    paths[2].write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return paths


def serve_https(redis_server: Any, directory: Path) -> Iterator[Served]:
    """`runstate serve` over https on the test redis-server, certificate and key given by the
    environment variables; one server for a whole module (pytest-redis flushes the data after
    each test, the server holds none)."""
    redis_url = f"redis://{redis_server.host}:{redis_server.port}/0"
    ca, certificate, key = make_certificates(directory)
    port = free_port()
    env = cli_env(
        redis_url, RUNSTATE_API_TOKENS=TOKENS, RUNSTATE_SSL_CERTFILE=str(certificate), RUNSTATE_SSL_KEYFILE=str(key)
    )
    server = subprocess.Popen(
        [sys.executable, "-m", "worker", "serve", "--port", str(port)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    served = Served(f"https://127.0.0.1:{port}", ca)
    try:
        wait_until(lambda: server.poll() is not None or _healthy(served))
        assert server.poll() is None, "runstate serve exited"
        yield served
    finally:
        # A client connection that never answers TLS close_notify holds uvicorn's graceful stop for
        # asyncio's 30 s SSL shutdown timeout (requests' pool after a 401 does so); kill it sooner.
        stop(server, timeout=3)


def _healthy(served: Served) -> bool:
    try:
        return httpx.get(f"{served.url}/healthz", verify=served.trust()).status_code == 200
    except httpx.TransportError:
        return False


def publish(served: Served, runtime: Runtime, token: str, *events: dict[str, Any]) -> None:
    """Post the events through the server, then apply them as a worker would."""
    answer = httpx.post(
        f"{served.url}/v1/events",
        json=list(events),
        headers={"authorization": f"Bearer {token}"},
        verify=served.trust(),
    )
    assert (answer.status_code, answer.json()["rejected"]) == (202, [])
    runtime.processor.drain(held(runtime, *{e["run_id"] for e in events}))  # the token's account's runs


def step_events(run_id: str, step_id: str, outcome: str, **data: Any) -> list[dict[str, Any]]:
    """A step created, then (unless `outcome` is "open") finished as `outcome` with `data`."""
    created = {"id": f"{step_id}_c", "type": "step.created", "run_id": run_id, "step_id": step_id}
    created["data"] = {"model": "gpt-4o", "model_handle": "openai/gpt-4o"}
    if outcome == "open":
        return [created]
    return [
        created,
        {"id": f"{step_id}_x", "type": f"step.{outcome}", "run_id": run_id, "step_id": step_id, "data": data},
    ]


def sample_runs(served: Served, runtime: Runtime) -> None:
    """acct_a: run_sdk (thread_1, asst_1) with steps s1 … s5 created in that order — s2 failed,
    s5 still open, the others completed — and run_done, completed; acct_b: run_b with step sb1."""
    started = {"id": "run_sdk_s", "type": "run.started", "run_id": "run_sdk"}
    started["data"] = {"assistant_id": "asst_1", "thread_id": "thread_1", "metadata": {"team": "billing"}}
    usage = {"usage": {"prompt_tokens": 10, "completion_tokens": 2}, "stop_reason": "stop"}
    error = {"error": {"code": "tool_error", "message": "invoice service answered 503"}}
    steps = [("s1", "completed", usage), ("s2", "failed", error), ("s3", "completed", usage)]
    steps += [("s4", "completed", usage), ("s5", "open", {})]
    events = [started] + [
        e for step_id, outcome, data in steps for e in step_events("run_sdk", step_id, outcome, **data)
    ]
    publish(served, runtime, "tok_a", *events)
    done = {"id": "run_done_s", "type": "run.started", "run_id": "run_done", "data": {"agent_id": "asst_2"}}
    finished = {"id": "run_done_c", "type": "run.completed", "run_id": "run_done"}
    publish(served, runtime, "tok_a", done, *step_events("run_done", "sd1", "completed", **usage), finished)
    theirs = {"id": "run_b_s", "type": "run.started", "run_id": "run_b", "data": {"thread_id": "thread_1"}}
    publish(served, runtime, "tok_b", theirs, *step_events("run_b", "sb1", "completed", **usage))
