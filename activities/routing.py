"""The host-bound work on a project's names outside its deployments: rendering its route again
when its custom domains change, and watching their certificates (a step of each monitor
pass). Both run on the server's own queue: they read and write its files. A refresh is only
ever started by the project's serializer, between two deployments, so it never races one
writing the route."""

import hashlib
import logging
from collections.abc import Callable
from datetime import UTC, datetime

import sqlalchemy as sa
from temporalio import activity
from temporalio.client import Client

from activities.adapters.beat import Beat
from activities.adapters.certificates import (
    AcmeCertificate,
    AcmeError,
    acme_certificates,
    acme_errors,
    covering,
    write_own_certificates,
)
from activities.adapters.hosts import RoutedDomain, domains_of, hosts_for, save_domains
from activities.adapters.traefik import public_target, refresh_route
from activities.adapters.web import wait_for_route
from activities.heartbeat import heartbeating
from slipway import domains, monitoring, project_events
from slipway.domains import CertificateSource, CertificateState, DomainRecord
from slipway.errors import BadInputError
from slipway.models import MonitorInput, MonitorReport, RouteResult
from slipway.names import InvalidNameError, validate_project_name
from slipway.secrets import SecretError, load_key, unseal
from slipway.settings import Settings

log = logging.getLogger(__name__)

ROUTE_WAIT_SECONDS = 15.0
"""How long a refresh waits for Traefik to serve the route it wrote."""


def routed(records: list[DomainRecord]) -> list[RoutedDomain]:
    """The domains as this server routes them."""
    return [
        RoutedDomain(
            name=r.name,
            redirect_www=r.redirect_www,
            own_certificate=r.certificate_source is CertificateSource.OWN,
            own_expires_at=r.certificate_expires_at
            if r.certificate_source is CertificateSource.OWN
            else None,
        )
        for r in records
    ]


class RoutingActivities:
    """Activities of one server on its projects' names."""

    def __init__(self, settings: Settings, engine: sa.Engine, client: Client) -> None:
        self.settings = settings
        self.engine = engine
        self.client = client
        self.layout = settings.layout

    @activity.defn(name="refresh_routes")
    async def refresh_routes(self, project: str) -> RouteResult | None:
        """Bring the server's copy of the project's domains, its own certificates and its
        route up to date with the database, then wait until Traefik serves the route.
        Idempotent: each file is rewritten only when its content changes."""
        try:
            validate_project_name(project)
        except InvalidNameError as err:
            raise BadInputError(str(err)) from None

        def run(beat: Beat) -> RouteResult | None:
            records = domains.domains_of(self.engine, project)
            write_own_certificates(self.layout, project, self._own(records))
            save_domains(self.layout, project, routed(records))
            hosts = hosts_for(self.settings, project)
            key = load_key(self.settings)
            refreshed = refresh_route(self.layout, project, hosts, key, write=True)
            if refreshed is None or not refreshed.changed:
                return refreshed
            names = ", ".join(n for d in hosts.domains for n in d.names) or "no custom domain"
            project_events.record_event(
                self.engine,
                project,
                "routes",
                f"Route rendered again for {hosts.base} and {names}",
                {"version": refreshed.version},
            )
            if public_target(self.layout, project) is not None:
                host, version = hosts.base, refreshed.version
                wait_for_route(self.settings.proxy_url, host, version, ROUTE_WAIT_SECONDS, beat)
            return refreshed

        return await heartbeating(run)

    def _own(self, records: list[DomainRecord]) -> list[tuple[str, str]]:
        """The certificates the project brought, each with its key unsealed."""
        own = [r for r in records if r.own_certificate and r.sealed_key]
        if not own:
            return []
        try:
            key = load_key(self.settings)
            return [
                (r.own_certificate or "", unseal({"key": r.sealed_key or ""}, key)["key"])
                for r in own
            ]
        except SecretError as err:
            raise BadInputError(str(err)) from None

    @activity.defn(name="check_certificates")
    async def check_certificates(self, inp: MonitorInput) -> MonitorReport:
        """Record how each domain's certificate on this server stands (issued, with its end;
        the ACME error Traefik logged; or still pending), raise one alert per domain whose
        certificate could not be issued, and have each project whose route no longer matches
        (a certificate now issued: its HTTP should redirect) rendered again. Idempotent
        enough to repeat: an alert is keyed by its episode."""
        report = MonitorReport()

        def run(beat: Beat) -> list[str]:
            records = domains.served_by(self.engine, self.settings.server)
            issued = acme_certificates(self.settings.acme_storage_path)
            refused = acme_errors(
                self.settings.traefik_log_path, self.settings.traefik_log_scan_bytes
            )
            now = datetime.now(UTC)
            for record in records:
                beat.check()
                self._look(record, issued, refused, now, report)
            key = load_key(self.settings)
            projects = sorted({r.project for r in records})
            return [p for p in projects if self._stale(p, records, key)]

        for project in await heartbeating(run):
            await domains.routes_changed(
                self.client, self.settings.task_queue, project, self.settings.host_task_queue
            )
        return report

    def _stale(self, project: str, records: list[DomainRecord], key: bytes) -> bool:
        """True if the server's copy of the project's domains or its route (rendered with the
        server's `key`) is out of date."""
        wanted = routed([r for r in records if r.project == project])
        if domains_of(self.layout, project) != wanted:
            return True
        hosts = hosts_for(self.settings, project)
        refreshed = refresh_route(self.layout, project, hosts, key, write=False)
        return refreshed is not None and refreshed.changed

    def _look(
        self,
        record: DomainRecord,
        issued: list[AcmeCertificate],
        refused: dict[str, AcmeError],
        now: datetime,
        report: MonitorReport,
    ) -> None:
        """One domain's certificate: its state recorded when it changed; an event when it
        was issued, renewed or refused, and an alert when it was refused (again refused, only
        the reason recorded is updated)."""
        report.checked[record.name] = record.certificate_state.value
        if record.certificate_source is CertificateSource.OWN:
            return
        state, expires, error, since = record.certificate_state, None, None, None
        found = covering(issued, record.names, now)
        # Traefik's log tells the time to the second: an error from the second the domain was
        # claimed in is taken as this claim's (one from before it, as an earlier claim's).
        error_seen = refused.get(record.name)
        if error_seen is not None and error_seen.at < record.claimed_at.replace(microsecond=0):
            error_seen = None
        if found is not None:
            state, expires = CertificateState.ISSUED, found.not_after
        elif error_seen is not None:
            state, error = CertificateState.FAILED, error_seen.message
            since = record.failing_since or now
        elif state is CertificateState.ISSUED:
            # Expired and not renewed: the listing shows it expired; it is not pending.
            return
        elif state is CertificateState.FAILED:
            return
        if (state, expires, error) == (
            record.certificate_state,
            record.certificate_expires_at,
            record.certificate_error,
        ):
            return
        domains.record_certificate(self.engine, record.name, state, expires, error, since)
        report.checked[record.name] = state.value
        if state is CertificateState.FAILED and record.certificate_state is state:
            return  # refused again, in other words: one event and one alert are enough
        self._event(record, state, expires, error)
        if state is CertificateState.FAILED and since is not None:
            self._alert(record, error or "", since, report)

    def _event(
        self,
        record: DomainRecord,
        state: CertificateState,
        expires: datetime | None,
        error: str | None,
    ) -> None:
        """The change in the project's history."""
        if state is CertificateState.ISSUED and expires is not None:
            done = "renewed" if record.certificate_state is CertificateState.ISSUED else "issued"
            message = (
                f"Certificate for {record.name} {done}; valid until {expires:%Y-%m-%d %H:%M} UTC"
            )
        else:
            message = f"No certificate for {record.name}: {error}"
        metadata = {"domain": record.name, "state": state.value}
        project_events.record_event(self.engine, record.project, "certificate", message, metadata)

    def _alert(
        self, record: DomainRecord, error: str, since: datetime, report: MonitorReport
    ) -> None:
        """One alert per episode: from the first pass that saw the domain's certificate
        refused until one is issued."""
        key = hashlib.sha256(f"{record.name}\0{since.isoformat()}".encode()).hexdigest()[:32]
        message = (
            f"No certificate could be issued for {record.name} ({record.project}); it still "
            f"answers over HTTP. The ACME CA said: {error}"
        )
        alert_id = monitoring.raise_alert(
            self.engine,
            record.project,
            "certificate",
            f"{record.project}:certificate:{key}",
            message,
            {"domain": record.name},
        )
        if alert_id is not None:
            report.alerts.append(alert_id)
            log.error("alert %d: %s", alert_id, message)

    def all(self) -> list[Callable[..., object]]:
        """Every activity of this class, for the worker."""
        return [self.refresh_routes, self.check_certificates]
