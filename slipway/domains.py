"""Custom domains: the records of which project claims which name (in its ASCII form, see
`domain_names`) and how its certificate stands, and the signal that has a project's route
rendered again on its server."""

from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

import sqlalchemy as sa
from pydantic import BaseModel, ConfigDict
from pydantic.alias_generators import to_camel
from temporalio.client import Client
from temporalio.common import SearchAttributePair, TypedSearchAttributes

from slipway.domain_names import unicode_name, www_of
from slipway.models import ProjectInput
from slipway.search_attributes import PROJECT_NAME
from slipway.submission import PROJECT_WORKFLOW
from slipway.tables import domains, projects
from slipway.workflow_ids import project_workflow_id

ROUTES_CHANGED_SIGNAL = "routes_changed"


class DomainConflictError(ValueError):
    """A name that is valid but taken: by another project, by Slipway itself, or past the
    project's limit; the message says which."""


class DomainNotFoundError(LookupError):
    """No such project, or no such domain of it."""


class CertificateSource(StrEnum):
    """Where a domain's certificate comes from."""

    ACME = "acme"
    OWN = "own"


class CertificateState(StrEnum):
    """How a domain's certificate stands."""

    PENDING = "pending"
    ISSUED = "issued"
    FAILED = "failed"
    EXPIRED = "expired"


class ApiModel(BaseModel):
    """Snake case in Python, camel case on the wire."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True)


class Certificate(ApiModel):
    """A domain's certificate as people see it: never its key."""

    source: CertificateSource
    state: CertificateState
    expires_at: datetime | None = None
    error: str | None = None


class DomainView(ApiModel):
    """A custom domain as the listing shows it."""

    name: str
    unicode_name: str
    project: str
    redirect_www: bool
    certificate: Certificate
    created_at: datetime


class DomainRecord(BaseModel):
    """A custom domain as stored; `own_certificate` is a PEM chain, its key only sealed."""

    name: str
    project: str
    redirect_www: bool
    certificate_source: CertificateSource
    certificate_state: CertificateState
    certificate_expires_at: datetime | None
    certificate_error: str | None
    failing_since: datetime | None
    own_certificate: str | None
    sealed_key: str | None
    created_at: datetime
    claimed_at: datetime

    @property
    def names(self) -> list[str]:
        """Every name the domain answers at: itself, and its `www.` name if it redirects."""
        return [self.name, www_of(self.name)] if self.redirect_www else [self.name]

    def view(self, now: datetime | None = None) -> DomainView:
        """The record as people see it; an issued certificate past its end is expired."""
        state = self.certificate_state
        expires = self.certificate_expires_at
        if state is CertificateState.ISSUED and expires and expires <= (now or datetime.now(UTC)):
            state = CertificateState.EXPIRED
        return DomainView(
            name=self.name,
            unicode_name=unicode_name(self.name),
            project=self.project,
            redirect_www=self.redirect_www,
            certificate=Certificate(
                source=self.certificate_source,
                state=state,
                expires_at=expires,
                error=self.certificate_error,
            ),
            created_at=self.created_at,
        )


class OwnCertificate(BaseModel):
    """A certificate brought for a domain, checked: its chain, its key sealed, its end."""

    chain: str
    sealed_key: str
    expires_at: datetime


_COLUMNS = (
    domains.c.name,
    projects.c.name.label("project"),
    domains.c.redirect_www,
    domains.c.certificate_source,
    domains.c.certificate_state,
    domains.c.certificate_expires_at,
    domains.c.certificate_error,
    domains.c.failing_since,
    domains.c.own_certificate,
    domains.c.sealed_key,
    domains.c.created_at,
    domains.c.claimed_at,
)


def _select() -> sa.Select[Any]:
    return sa.select(*_COLUMNS).join(projects, projects.c.id == domains.c.project_id)


def _records(rows: Any) -> list[DomainRecord]:
    return [DomainRecord.model_validate(row._asdict()) for row in rows]


def _project_id(conn: sa.Connection, project: str) -> int:
    found = conn.execute(sa.select(projects.c.id).where(projects.c.name == project)).scalar()
    if found is None:
        raise DomainNotFoundError(f"no project {project} is recorded: deploy it first")
    return int(found)


def _under(name: str, base: str) -> bool:
    return name == base or name.endswith(f".{base}")


def _check_claim(
    conn: sa.Connection, project: str, name: str, redirect_www: bool, base_domain: str
) -> bool:
    """Refuse a claim that collides with Slipway's names or another domain (or its `www.`
    name); True if the project already has this domain."""
    wanted = [name, www_of(name)] if redirect_www else [name]
    for each in wanted:
        if _under(each, base_domain.lower()):
            raise DomainConflictError(
                f"{each} is under {base_domain}, where Slipway names its projects "
                "(SLIPWAY_BASE_DOMAIN): it cannot be a custom domain"
            )
    bare = name.removeprefix("www.")
    candidates = {name, www_of(name), bare}
    rows = conn.execute(_select().where(domains.c.name.in_(candidates))).all()
    mine = False
    for row in _records(rows):
        if row.name == name:
            if row.project != project:
                raise DomainConflictError(f"{name} is already a domain of project {row.project}")
            mine = True
        elif redirect_www and row.name == www_of(name):
            raise DomainConflictError(
                f"{row.name} is a domain of project {row.project}: remove it before {name} "
                "redirects it"
            )
        elif row.name == bare and row.redirect_www and name == www_of(bare):
            raise DomainConflictError(
                f"{name} redirects to {bare} for project {row.project}: add {bare} without "
                "redirectWww first"
            )
    return mine


def claim(
    engine: sa.Engine,
    project: str,
    name: str,
    *,
    redirect_www: bool,
    own: OwnCertificate | None,
    base_domain: str,
    limit: int,
) -> tuple[DomainRecord, bool]:
    """Give `name` (already in its ASCII form) to `project`; returns the record and whether
    it is new. Claiming it again for the same project updates how it is served. Claims are
    serialized, so two projects never both get a name or its `www.` name."""
    with engine.begin() as conn:
        conn.execute(sa.text("SELECT pg_advisory_xact_lock(hashtext('slipway-domains'))"))
        project_id = _project_id(conn, project)
        mine = _check_claim(conn, project, name, redirect_www, base_domain)
        count = conn.execute(
            sa.select(sa.func.count()).where(domains.c.project_id == project_id)
        ).scalar_one()
        if not mine and count >= limit:
            raise DomainConflictError(
                f"{project} already has {count} domains, the most it may have "
                "(SLIPWAY_MAX_DOMAINS_PER_PROJECT)"
            )
        values: dict[str, Any] = {
            "redirect_www": redirect_www,
            "certificate_source": CertificateSource.OWN if own else CertificateSource.ACME,
            "certificate_state": CertificateState.ISSUED if own else CertificateState.PENDING,
            "certificate_expires_at": own.expires_at if own else None,
            "certificate_error": None,
            "failing_since": None,
            "own_certificate": own.chain if own else None,
            "sealed_key": own.sealed_key if own else None,
            "claimed_at": sa.func.now(),
        }
        if mine:
            conn.execute(sa.update(domains).where(domains.c.name == name).values(**values))
        else:
            conn.execute(sa.insert(domains).values(name=name, project_id=project_id, **values))
        record = _records(conn.execute(_select().where(domains.c.name == name)).all())[0]
    return record, not mine


def release(engine: sa.Engine, project: str, name: str) -> DomainRecord:
    """Take `name` from `project`; `DomainNotFoundError` if it is not one of its domains."""
    with engine.begin() as conn:
        found = _records(
            conn.execute(_select().where(domains.c.name == name, projects.c.name == project)).all()
        )
        if not found:
            raise DomainNotFoundError(f"{name} is not a domain of project {project}")
        conn.execute(sa.delete(domains).where(domains.c.name == name))
    return found[0]


def require_project(engine: sa.Engine, project: str) -> None:
    """`DomainNotFoundError` for a project never recorded."""
    with engine.connect() as conn:
        _project_id(conn, project)


def domain(engine: sa.Engine, project: str, name: str) -> DomainRecord:
    """One domain of a project; `DomainNotFoundError` if it is not one of its domains."""
    with engine.connect() as conn:
        query = _select().where(domains.c.name == name, projects.c.name == project)
        found = _records(conn.execute(query).all())
    if not found:
        raise DomainNotFoundError(f"{name} is not a domain of project {project}")
    return found[0]


def domains_of(engine: sa.Engine, project: str | None = None) -> list[DomainRecord]:
    """Every domain, or a project's (`DomainNotFoundError` for a project never recorded),
    by project and name."""
    query = _select().order_by(projects.c.name, domains.c.name)
    with engine.connect() as conn:
        if project is not None:
            _project_id(conn, project)
            query = query.where(projects.c.name == project)
        return _records(conn.execute(query).all())


def served_by(engine: sa.Engine, server: str) -> list[DomainRecord]:
    """The domains of the projects a server serves, by project and name."""
    query = _select().where(projects.c.server == server).order_by(projects.c.name, domains.c.name)
    with engine.connect() as conn:
        return _records(conn.execute(query).all())


def record_certificate(
    engine: sa.Engine,
    name: str,
    state: CertificateState,
    expires_at: datetime | None,
    error: str | None,
    failing_since: datetime | None,
) -> None:
    """Write how a domain's certificate now stands."""
    with engine.begin() as conn:
        conn.execute(
            sa.update(domains)
            .where(domains.c.name == name)
            .values(
                certificate_state=state,
                certificate_expires_at=expires_at,
                certificate_error=error,
                failing_since=failing_since,
            )
        )


async def routes_changed(client: Client, task_queue: str, project: str, host_queue: str) -> None:
    """Have the project's serializer re-render its route on its server (`host_queue`)
    between two deployments, starting the serializer if it is idle."""
    await client.start_workflow(
        PROJECT_WORKFLOW,
        ProjectInput(project=project),
        id=project_workflow_id(project),
        task_queue=task_queue,
        start_signal=ROUTES_CHANGED_SIGNAL,
        start_signal_args=[host_queue],
        search_attributes=TypedSearchAttributes([SearchAttributePair(PROJECT_NAME, project)]),
        static_summary=f"Deployments of {project}, one at a time",
    )
