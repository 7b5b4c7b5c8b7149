"""The Python API of custom domains: add one to a project (optionally with its own
certificate and key), remove it, list them. A change takes effect without a redeploy: the
project's serializer renders its route again on its server, between two deployments.

A certificate brought with a domain is checked before anything is recorded (its key matches
it, it names the domain, its chain holds together, it has not expired), and its key is
sealed at once: the database, Temporal's history and the log never see it in clear.
"""

import asyncio
from datetime import UTC, datetime

import sqlalchemy as sa
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.types import PrivateKeyTypes
from temporalio.client import Client

from slipway import domains, project_events, queries
from slipway.domain_names import domain_name, www_of
from slipway.domains import DomainView, OwnCertificate
from slipway.names import validate_project_name
from slipway.secrets import load_key, seal
from slipway.settings import Settings, host_task_queue


class CertificateError(ValueError):
    """A certificate or key that cannot serve the domain; the message says why."""


def _names_of(leaf: x509.Certificate) -> list[str]:
    try:
        names = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return []
    return [name.lower() for name in names.get_values_for_type(x509.DNSName)]


def _covered(name: str, names: list[str]) -> bool:
    """True if a certificate for `names` is valid for `name` (a wildcard covers one label)."""
    parent = name.partition(".")[2]
    return name in names or f"*.{parent}" in names


def _key(pem: str) -> PrivateKeyTypes:
    try:
        return serialization.load_pem_private_key(pem.encode(), password=None)
    except TypeError:
        raise CertificateError("key: it is encrypted; give the key without a passphrase") from None
    except ValueError:
        raise CertificateError("key: not a PEM private key") from None


def checked_certificate(
    certificate: str, key: str, names: list[str], now: datetime | None = None
) -> tuple[str, datetime]:
    """The chain (leaf first) as PEM and the leaf's end, if the key matches the leaf, the
    leaf covers every one of `names`, each certificate of the chain is issued by the next one,
    and none has expired or is not valid yet; `CertificateError` otherwise."""
    now = now or datetime.now(UTC)
    try:
        chain = x509.load_pem_x509_certificates(certificate.encode())
    except ValueError:
        raise CertificateError("certificate: not a PEM certificate chain") from None
    leaf = chain[0]
    public = serialization.PublicFormat.SubjectPublicKeyInfo
    der = serialization.Encoding.DER
    if _key(key).public_key().public_bytes(der, public) != leaf.public_key().public_bytes(
        der, public
    ):
        raise CertificateError("key: it is not the key of the certificate (the first in the PEM)")
    covered = _names_of(leaf)
    for name in names:
        if not _covered(name, covered):
            raise CertificateError(
                f"certificate: it is not valid for {name} (it names {', '.join(covered) or 'none'})"
            )
    for position, (each, issuer) in enumerate(zip(chain, [*chain[1:], None], strict=True)):
        if each.not_valid_after_utc <= now:
            raise CertificateError(
                f"certificate: #{position + 1} of the chain expired on "
                f"{each.not_valid_after_utc:%Y-%m-%d %H:%M} UTC"
            )
        if each.not_valid_before_utc > now:
            raise CertificateError(
                f"certificate: #{position + 1} of the chain is not valid before "
                f"{each.not_valid_before_utc:%Y-%m-%d %H:%M} UTC"
            )
        if issuer is None:
            continue
        try:
            each.verify_directly_issued_by(issuer)
        except (ValueError, TypeError, InvalidSignature):
            raise CertificateError(
                f"certificate: #{position + 1} of the chain is not issued by #{position + 2}; "
                "give the chain in order, leaf first"
            ) from None
    pem = "".join(c.public_bytes(serialization.Encoding.PEM).decode() for c in chain)
    return pem, leaf.not_valid_after_utc


def own_certificate(
    settings: Settings, name: str, redirect_www: bool, certificate: str, key: str
) -> OwnCertificate:
    """A certificate brought for `name`, checked, its key sealed."""
    names = [name, www_of(name)] if redirect_www else [name]
    chain, expires = checked_certificate(certificate, key, names)
    sealed = seal({"key": key}, load_key(settings))["key"]
    return OwnCertificate(chain=chain, sealed_key=sealed, expires_at=expires)


async def _refresh(client: Client, engine: sa.Engine, settings: Settings, project: str) -> None:
    """Have the project's route rendered again on the server it is pinned to (this one's,
    before its first deployment, as that deployment would be)."""
    pinned = await asyncio.to_thread(queries.project_server, engine, project)
    queue = host_task_queue(settings.task_queue, pinned or settings.server)
    await domains.routes_changed(client, settings.task_queue, project, queue)


async def add(
    client: Client,
    engine: sa.Engine,
    settings: Settings,
    project: str,
    name: str,
    *,
    redirect_www: bool = False,
    certificate: str | None = None,
    key: str | None = None,
) -> tuple[DomainView, bool]:
    """Have `project` answer at `name` (Unicode or ASCII; kept as ASCII), and with
    `redirect_www` at `www.<name>` too, redirecting to it. Its certificate comes from the ACME
    CA, or is `certificate` (a PEM chain, leaf first) with its `key`. Returns the domain and
    whether it is new; adding it again to the same project changes how it is served.

    Refused: an invalid name (`DomainError`), a name another project has or one under the
    base domain or past the project's limit (`DomainConflictError`), an unknown project
    (`DomainNotFoundError`), a certificate that does not fit (`CertificateError`)."""
    validate_project_name(project)
    await asyncio.to_thread(domains.require_project, engine, project)
    ascii_name = domain_name(name)
    if (certificate is None) != (key is None):
        raise CertificateError("certificate and key: give both, or neither (for ACME)")
    own = None
    if certificate is not None and key is not None:
        own = own_certificate(settings, ascii_name, redirect_www, certificate, key)
    record, created = await asyncio.to_thread(
        domains.claim,
        engine,
        project,
        ascii_name,
        redirect_www=redirect_www,
        own=own,
        base_domain=settings.base_domain,
        limit=settings.max_domains_per_project,
    )
    how = "with its own certificate" if own else "certificate from the ACME CA"
    verb = "added" if created else "changed"
    await asyncio.to_thread(
        project_events.record_event,
        engine,
        project,
        "domain",
        f"Domain {', '.join(record.names)} {verb} ({how})",
        {"domain": ascii_name, "redirectWww": redirect_www},
    )
    await _refresh(client, engine, settings, project)
    return record.view(), created


async def remove(
    client: Client, engine: sa.Engine, settings: Settings, project: str, name: str
) -> DomainView:
    """Stop `project` answering at `name` (`DomainNotFoundError` if it is not one of its
    domains); its certificate stays in Traefik's storage until it expires."""
    validate_project_name(project)
    await asyncio.to_thread(domains.require_project, engine, project)
    record = await asyncio.to_thread(domains.release, engine, project, domain_name(name))
    await asyncio.to_thread(
        project_events.record_event,
        engine,
        project,
        "domain",
        f"Domain {', '.join(record.names)} removed",
        {"domain": record.name},
    )
    await _refresh(client, engine, settings, project)
    return record.view()


def listed(engine: sa.Engine, project: str | None = None) -> list[DomainView]:
    """Every domain (or a project's), each with its certificate's state: pending, issued
    (with its end), expired, or failed with the ACME CA's reason in words."""
    if project is not None:
        validate_project_name(project)
    return [record.view() for record in domains.domains_of(engine, project)]


def shown(engine: sa.Engine, project: str, name: str) -> DomainView:
    """One domain of a project."""
    validate_project_name(project)
    domains.require_project(engine, project)
    return domains.domain(engine, project, domain_name(name)).view()
