"""The real components the tests run against, started by the tests themselves."""

import ipaddress
import json
import os
import shutil
import ssl
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from activities.adapters.traefik import serve_shared
from slipway.loopback_ports import PortPool
from slipway.settings import Settings
from slipway.stack import components, credentials, postgres
from slipway.stack.probes import tcp_open
from slipway.stack.process import Service


def in_ci() -> bool:
    """CI must fail, never skip, when a component is missing."""
    return os.environ.get("CI", "").lower() in ("1", "true", "yes")


def require(available: bool, why: str) -> None:
    """Skip outside CI when a component is absent, saying why; fail in CI."""
    if available:
        return
    if in_ci():
        pytest.fail(f"{why} (CI=true: a missing component is a failure)")
    pytest.skip(why)


@contextmanager
def own_temp_dir(prefix: str) -> Iterator[Path]:
    """A temp dir under the system's temp root, removed afterwards."""
    root = Path(tempfile.mkdtemp(prefix=prefix))
    try:
        yield root
    finally:
        shutil.rmtree(root, ignore_errors=True)


_PORTS = PortPool(
    int(os.environ.get("PYTEST_XDIST_WORKER", "gw0").removeprefix("gw")),
    int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1")),
)
"""This test process's share of the ports: a session's test processes never choose the same."""


def free_port() -> int:
    """A port on 127.0.0.1 nobody listens on right now, outside the range the kernel hands
    out on its own, and never handed out before in this session (see `PortPool`)."""
    return _PORTS.take()


WEB_PORTS = ("http_port", "https_port", "candidate_port", "traefik_admin_port", "static_port")
"""Every port setting Traefik and Caddy listen on. A test that starts web servers of its own
gives each a free one (`web_ports`), so a port added here reaches every such test."""


def web_ports() -> dict[str, int]:
    """A free port for each of `WEB_PORTS`, as settings to update."""
    return {name: free_port() for name in WEB_PORTS}


def embedded_postgres(root: Path) -> tuple[Service, str]:
    """A fresh embedded PostgreSQL on a free port, its password in `root`; returns it and
    its URL (with the password)."""
    port = free_port()
    password_file = root / "postgres.password"
    service = postgres.postgres_service(
        root / "postgres", password_file, port, root / "logs" / "postgres.log"
    )
    service.start()
    service.wait_ready()
    return service, credentials.url(port, credentials.password(password_file))


def web_servers(settings: Settings) -> list[Service]:
    """Caddy and Traefik for `settings`, started and answering, with the shared route a
    worker writes at its start. Unless `settings` name Traefik's HTTPS port, it takes a free
    one: test sessions side by side (and a `slipway dev` beside them) would otherwise all
    claim the default. One that fails to start stops those started before it, which the
    caller never gets to stop."""
    if "https_port" not in settings.model_fields_set:
        settings = settings.model_copy(update={"https_port": free_port()})
    started: list[Service] = []
    try:
        for service in (components.caddy(settings), components.traefik(settings)):
            started.append(service)
            service.start()
            service.wait_ready()
        serve_shared(settings)
    except BaseException:
        for service in reversed(started):
            service.stop()
        raise
    return started


def certificate_authority(name: str) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    """A root CA of its own for a test, valid for a day."""
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = datetime.now(UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=1))
        .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    return certificate, key


def issued(
    ca: tuple[x509.Certificate, ec.EllipticCurvePrivateKey],
    names: list[str],
    *,
    addresses: tuple[str, ...] = (),
    not_before: datetime | None = None,
    not_after: datetime | None = None,
) -> tuple[str, str]:
    """A leaf certificate from `ca` for `names` (and IP `addresses`): its PEM and its
    key's (PKCS #8, unencrypted)."""
    authority, authority_key = ca
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.now(UTC)
    alternatives: list[x509.GeneralName] = [x509.DNSName(n) for n in names]
    alternatives += [x509.IPAddress(ipaddress.ip_address(a)) for a in addresses]
    certificate = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, names[0])]))
        .issuer_name(authority.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before or now - timedelta(minutes=5))
        .not_valid_after(not_after or now + timedelta(hours=12))
        .add_extension(x509.SubjectAlternativeName(alternatives), critical=False)
        .sign(authority_key, hashes.SHA256())
    )
    return (
        certificate.public_bytes(serialization.Encoding.PEM).decode(),
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        ).decode(),
    )


def pebble_installed() -> bool:
    """Debian's pebble, the ACME CA the custom-domain tests get certificates from."""
    return shutil.which("pebble") is not None and shutil.which("pebble-challtestsrv") is not None


@dataclass
class Pebble:
    """A pebble ACME CA on loopback, and the pebble-challtestsrv that answers its DNS (every
    name is 127.0.0.1 unless told otherwise), validating HTTP-01 challenges on the port given
    (Traefik's web entry point)."""

    root: Path
    http_port: int
    validity_seconds: int = 0
    """How long its certificates last; 0 is pebble's default (years)."""
    services: list[Service] = field(default_factory=list)
    acme_port: int = field(default_factory=free_port)
    management_port: int = field(default_factory=free_port)
    dns_port: int = field(default_factory=free_port)
    dns_management_port: int = field(default_factory=free_port)

    @property
    def directory(self) -> str:
        """The ACME directory, for Traefik's resolver (SLIPWAY_ACME_CA)."""
        return f"https://127.0.0.1:{self.acme_port}/dir"

    @property
    def trust(self) -> Path:
        """The CA of pebble's own HTTPS listener (SLIPWAY_ACME_CA_CERTIFICATES)."""
        return self.root / "listener-ca.pem"

    def start(self) -> "Pebble":
        """Start both, with pebble's listener certificate made for this run."""
        self.root.mkdir(parents=True, exist_ok=True)
        ca = certificate_authority("pebble listener CA")
        self.trust.write_bytes(ca[0].public_bytes(serialization.Encoding.PEM))
        chain, key = issued(ca, ["localhost"], addresses=("127.0.0.1",))
        (self.root / "listener.pem").write_text(chain)
        (self.root / "listener.key").write_text(key)
        config = {
            "pebble": {
                "listenAddress": f"127.0.0.1:{self.acme_port}",
                "managementListenAddress": f"127.0.0.1:{self.management_port}",
                "certificate": str(self.root / "listener.pem"),
                "privateKey": str(self.root / "listener.key"),
                "httpPort": self.http_port,
                "tlsPort": free_port(),
                "ocspResponderURL": "",
                "externalAccountBindingRequired": False,
                "certificateValidityPeriod": self.validity_seconds,
            }
        }
        (self.root / "pebble.json").write_text(json.dumps(config))
        dns = Service(
            name="pebble-challtestsrv",
            argv=[
                "pebble-challtestsrv",
                f"-dns01=127.0.0.1:{self.dns_port}",
                "-http01=",
                "-https01=",
                "-tlsalpn01=",
                f"-management=127.0.0.1:{self.dns_management_port}",
                "-defaultIPv4=127.0.0.1",
                "-defaultIPv6=",
            ],
            log=self.root / "challtestsrv.log",
            ready=lambda: tcp_open(self.dns_management_port),
            address=f"127.0.0.1:{self.dns_port}",
        )
        env = {**os.environ, "PEBBLE_VA_NOSLEEP": "1", "PEBBLE_WFE_NONCEREJECT": "0"}
        acme = Service(
            name="pebble",
            argv=[
                "pebble",
                "-config",
                str(self.root / "pebble.json"),
                "-dnsserver",
                f"127.0.0.1:{self.dns_port}",
            ],
            log=self.root / "pebble.log",
            ready=lambda: tcp_open(self.acme_port) and tcp_open(self.management_port),
            address=self.directory,
            env=env,
        )
        for service in (dns, acme):
            service.start()
            self.services.append(service)
            service.wait_ready()
        return self

    def stop(self) -> None:
        for service in reversed(self.services):
            service.stop()

    def issuing_root(self) -> str:
        """The root pebble issues under (made anew at each start), as PEM."""
        answer = httpx.get(
            f"https://127.0.0.1:{self.management_port}/roots/0",
            verify=ssl.create_default_context(cafile=self.trust),
        )
        answer.raise_for_status()
        return answer.text

    def answer(self, name: str, address: str) -> None:
        """Have pebble's DNS answer `name` with `address`."""
        httpx.post(
            f"http://127.0.0.1:{self.dns_management_port}/add-a",
            json={"host": f"{name}.", "addresses": [address]},
        ).raise_for_status()
