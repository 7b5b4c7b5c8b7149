"""The certificates Traefik serves for custom domains: those its ACME resolver obtained (read
back from its storage, `acme.json`), why it could not obtain one (read from its JSON log),
and those a project brought, written for the file provider in a file only the service reads.
"""

import base64
import json
import os
from datetime import UTC, datetime
from pathlib import Path

from cryptography import x509
from pydantic import BaseModel

from activities.adapters.dynamic_yaml import dump_dynamic
from slipway.layout import Layout
from slipway.names import validate_project_name

RESOLVER = "slipway"
"""The certificate resolver's name in Traefik's static configuration."""

REFUSED = "Unable to obtain ACME certificate for domains"
"""How Traefik's log begins the line that says why a certificate was not issued."""

MAX_ERROR = 1000
"""How much of an ACME error is kept: the CA's reason comes early, the rest is detail."""


class AcmeCertificate(BaseModel):
    """One certificate in Traefik's ACME storage (its key is never read)."""

    main: str
    sans: list[str]
    serial: int
    not_after: datetime

    def covers(self, names: list[str]) -> bool:
        """True if it was issued for every one of these names (as Traefik judges it, when
        it decides whether a router needs a new one)."""
        return set(names) <= {self.main, *self.sans}


class AcmeError(BaseModel):
    """The last reason Traefik gave for not obtaining a certificate for a domain."""

    at: datetime
    message: str


def acme_certificates(storage: Path) -> list[AcmeCertificate]:
    """The resolver's certificates; none before Traefik has stored any."""
    try:
        text = storage.read_text()
    except FileNotFoundError:
        return []
    if not text.strip():
        return []  # made at start, filled once there is an account
    document = json.loads(text)
    found = []
    for entry in (document.get(RESOLVER) or {}).get("Certificates") or []:
        pem = base64.b64decode(entry["certificate"])
        leaf = x509.load_pem_x509_certificates(pem)[0]
        found.append(
            AcmeCertificate(
                main=entry["domain"]["main"],
                sans=entry["domain"].get("sans") or [],
                serial=leaf.serial_number,
                not_after=leaf.not_valid_after_utc,
            )
        )
    return found


def covering(
    certificates: list[AcmeCertificate], names: list[str], now: datetime
) -> AcmeCertificate | None:
    """The certificate for `names` that lasts longest, if one is still valid."""
    valid = [c for c in certificates if c.covers(names) and c.not_after > now]
    return max(valid, key=lambda c: c.not_after, default=None)


def acme_errors(log: Path, scan_bytes: int) -> dict[str, AcmeError]:
    """The latest refusal per domain (by the first name it was asked for) in the last
    `scan_bytes` of Traefik's JSON log; lines that are not JSON are skipped."""
    try:
        with log.open("rb") as out:
            size = out.seek(0, os.SEEK_END)
            out.seek(max(0, size - scan_bytes))
            tail = out.read().decode(errors="replace")
    except FileNotFoundError:
        return {}
    found: dict[str, AcmeError] = {}
    for line in tail.splitlines():
        if REFUSED not in line:
            continue
        try:
            entry = json.loads(line)
            names = entry["domains"]
            at = datetime.fromisoformat(entry["time"])
        except (ValueError, KeyError, TypeError):
            continue
        if isinstance(names, list) and names and str(entry.get("message", "")).startswith(REFUSED):
            message = str(entry.get("error") or entry["message"])[:MAX_ERROR]
            found[str(names[0])] = AcmeError(at=at.astimezone(UTC), message=message)
    return found


def own_certificates_file(layout: Layout, project: str) -> Path:
    """The file provider's file with the certificates a project brought (with their keys)."""
    return layout.routes / f"{validate_project_name(project)}.certificates.yml"


def write_own_certificates(layout: Layout, project: str, pairs: list[tuple[str, str]]) -> bool:
    """Give Traefik the project's own certificates, each a (chain, key) in PEM, in a file
    readable by this service's user only; with none, remove the file. True if it changed.
    The file is replaced through a rename from the scratch dir beside Traefik's watched
    directory (see `Layout.route_scratch`), and made private before anything is in it."""
    path = own_certificates_file(layout, project)
    if not pairs:
        existed = path.exists()
        path.unlink(missing_ok=True)
        return existed
    text = dump_dynamic(
        {"tls": {"certificates": [{"certFile": chain, "keyFile": key} for chain, key in pairs]}}
    )
    if path.exists() and path.read_text() == text:
        return False
    path.parent.mkdir(parents=True, exist_ok=True)
    layout.route_scratch.mkdir(parents=True, exist_ok=True)
    scratch = layout.route_scratch / f".{path.name}.tmp"
    scratch.unlink(missing_ok=True)
    fd = os.open(scratch, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write(text)
    scratch.replace(path)
    return True
