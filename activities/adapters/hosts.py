"""The names a project answers at on this server: its base name, and the custom domains
recorded for it here. The record (`<home>/traefik/domains/<project>.json`) is written only by
the project's route refresh, which runs between its deployments, so that a deployment's
phases read the domains from the server's own disk, as they read its route."""

from datetime import UTC, datetime
from pathlib import Path

from pydantic import BaseModel, TypeAdapter

from activities.adapters.certificates import acme_certificates, covering
from activities.adapters.files import write_atomically
from slipway.layout import Layout
from slipway.names import validate_project_name
from slipway.settings import Settings


class RoutedDomain(BaseModel):
    """A custom domain as this server routes it."""

    name: str
    redirect_www: bool = False
    own_certificate: bool = False
    """Served with the certificate the project brought, not one from the ACME resolver."""
    own_expires_at: datetime | None = None

    @property
    def names(self) -> list[str]:
        """Every name it answers at: itself, and its `www.` name if that redirects to it."""
        return [self.name, f"www.{self.name}"] if self.redirect_www else [self.name]


_RECORD = TypeAdapter(list[RoutedDomain])


class Hosts(BaseModel):
    """Every name of a project, and the domains whose certificate exists: their HTTP
    redirects to HTTPS."""

    base: str
    domains: list[RoutedDomain] = []
    secured: frozenset[str] = frozenset()
    https_port: int = 443
    secure_base: bool = False
    """The base name is served on the HTTPS entry point too (a preview's), its certificate
    from the ACME resolver; its HTTP keeps serving."""

    def secure(self, domain: RoutedDomain) -> bool:
        """True if the domain is served over HTTPS, its HTTP redirecting there."""
        return domain.name in self.secured


def record_of(layout: Layout, project: str) -> Path:
    """Where this server keeps the project's domains."""
    return layout.routes.parent / "domains" / f"{validate_project_name(project)}.json"


def domains_of(layout: Layout, project: str) -> list[RoutedDomain]:
    """The project's domains as recorded on this server (none before any was added)."""
    record = record_of(layout, project)
    return _RECORD.validate_json(record.read_text()) if record.exists() else []


def save_domains(layout: Layout, project: str, domains: list[RoutedDomain]) -> bool:
    """Record the project's domains on this server; True if they changed."""
    record = record_of(layout, project)
    text = _RECORD.dump_json(domains, indent=1).decode()
    if record.exists() and record.read_text() == text:
        return False
    record.parent.mkdir(parents=True, exist_ok=True)
    write_atomically(record, text)
    return True


def hosts_for(
    settings: Settings, project: str, now: datetime | None = None, *, preview: bool = False
) -> Hosts:
    """The project's names now: a domain is secured while its own certificate lasts, or
    once Traefik's ACME storage holds a valid certificate for all of its names. A preview's
    base name is served over HTTPS as well as HTTP."""
    now = now or datetime.now(UTC)
    domains = domains_of(settings.layout, project)
    issued = acme_certificates(settings.acme_storage_path) if domains else []
    secured = {
        d.name
        for d in domains
        if (d.own_certificate and d.own_expires_at is not None and d.own_expires_at > now)
        or (not d.own_certificate and covering(issued, d.names, now) is not None)
    }
    return Hosts(
        base=settings.project_host(project),
        domains=domains,
        secured=frozenset(secured),
        https_port=settings.https_port,
        secure_base=preview,
    )
