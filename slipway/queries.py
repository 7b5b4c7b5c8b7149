"""Reads of the deployment projection: one deployment, its log, and the queries that find
deployments needing attention."""

import uuid
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import UUID

from slipway.models import DeploymentView, LogEntry
from slipway.phases import IN_PROGRESS, WAITING, Status
from slipway.tables import deployment_logs, deployments, projects

_VIEW_COLUMNS = (
    deployments.c.id,
    projects.c.name.label("project"),
    deployments.c.status,
    deployments.c.phase,
    deployments.c.phase_progress.label("progress"),
    deployments.c.phase_metadata.label("metadata"),
    deployments.c.updated_at,
    deployments.c.phase_updated_at,
    deployments.c.created_at,
    deployments.c.workflow_id,
    deployments.c.source,
)


def _views(rows: Sequence[sa.Row[Any, *tuple[Any, ...]]]) -> list[DeploymentView]:
    return [DeploymentView.model_validate(row._asdict()) for row in rows]


def get_deployment(engine: sa.Engine, deployment_id: str) -> DeploymentView | None:
    """One deployment, or None if no row was recorded for it."""
    query = (
        sa.select(*_VIEW_COLUMNS)
        .join(projects, projects.c.id == deployments.c.project_id)
        .where(deployments.c.id == deployment_id)
    )
    with engine.connect() as conn:
        found = _views(conn.execute(query).all())
    return found[0] if found else None


def get_logs(engine: sa.Engine, deployment_id: str, after_id: int = 0) -> list[LogEntry]:
    """A deployment's log in the order it was written, optionally only rows after `after_id`."""
    query = (
        sa.select(
            deployment_logs.c.id,
            deployment_logs.c.timestamp,
            deployment_logs.c.level,
            deployment_logs.c.phase,
            deployment_logs.c.message,
            deployment_logs.c.metadata,
        )
        .where(deployment_logs.c.deployment_id == deployment_id, deployment_logs.c.id > after_id)
        .order_by(deployment_logs.c.id)
    )
    with engine.connect() as conn:
        return [LogEntry.model_validate(row._asdict()) for row in conn.execute(query)]


@dataclass(frozen=True)
class StuckMark:
    """Where a page of stuck deployments ended: its last row's place in their order."""

    phase_updated_at: datetime
    id: str


def stuck_query(
    older_than: timedelta,
    statuses: Collection[Status] = IN_PROGRESS,
    after: StuckMark | None = None,
) -> sa.Select[Any]:
    """The seed's stuck-deployment query: in progress, and in the same phase for too long,
    the longest first (the id orders a tie, so that pages neither skip nor repeat a row);
    with `after`, only those past that mark. It is served by idx_deployments_stuck
    (status, phase_updated_at); `statuses` can add `queued`, for deployments that never
    started."""
    in_progress = sorted(status.value for status in statuses)
    query = (
        sa.select(*_VIEW_COLUMNS)
        .join(projects, projects.c.id == deployments.c.project_id)
        .where(
            deployments.c.status.in_(in_progress),
            deployments.c.phase_updated_at < sa.func.now() - older_than,
        )
        .order_by(deployments.c.phase_updated_at, deployments.c.id)
    )
    if after is not None:
        query = query.where(
            sa.tuple_(deployments.c.phase_updated_at, deployments.c.id)
            > sa.tuple_(
                sa.literal(after.phase_updated_at, sa.DateTime(timezone=True)),
                sa.literal(after.id, UUID(as_uuid=False)),
            )
        )
    return query


def find_stuck(
    engine: sa.Engine,
    older_than: timedelta,
    statuses: Collection[Status] = IN_PROGRESS,
    *,
    limit: int | None = None,
    after: StuckMark | None = None,
) -> list[DeploymentView]:
    """Deployments in progress whose phase has not changed for longer than `older_than`,
    the longest first: all of them, or `limit` of them past `after`."""
    with engine.connect() as conn:
        return _views(conn.execute(stuck_query(older_than, statuses, after).limit(limit)).all())


def in_progress(engine: sa.Engine, older_than: timedelta) -> list[DeploymentView]:
    """Deployments queued or in progress whose phase is older than `older_than`: the
    candidates for orphans, whose workflow may no longer run."""
    return find_stuck(engine, older_than, WAITING)


def project_history(engine: sa.Engine, project: str) -> list[DeploymentView]:
    """Every deployment of a project, newest first."""
    query = (
        sa.select(*_VIEW_COLUMNS)
        .join(projects, projects.c.id == deployments.c.project_id)
        .where(projects.c.name == project)
        .order_by(deployments.c.created_at.desc())
    )
    with engine.connect() as conn:
        return _views(conn.execute(query).all())


def histories(engine: sa.Engine, names: Collection[str]) -> dict[str, list[DeploymentView]]:
    """Every deployment of each named project, newest first, in one query (a project with
    none maps to an empty list)."""
    found: dict[str, list[DeploymentView]] = {name: [] for name in names}
    if not found:
        return found
    query = (
        sa.select(*_VIEW_COLUMNS)
        .join(projects, projects.c.id == deployments.c.project_id)
        .where(projects.c.name.in_(sorted(found)))
        .order_by(projects.c.name, deployments.c.created_at.desc())
    )
    with engine.connect() as conn:
        for view in _views(conn.execute(query).all()):
            found[view.project].append(view)
    return found


def deployments_among(engine: sa.Engine, ids: Collection[str]) -> dict[str, DeploymentView]:
    """The recorded deployments of these ids, in one query; an id without a row is absent."""
    if not ids:
        return {}
    query = (
        sa.select(*_VIEW_COLUMNS)
        .join(projects, projects.c.id == deployments.c.project_id)
        .where(deployments.c.id.in_(sorted(ids)))
    )
    with engine.connect() as conn:
        return {view.id: view for view in _views(conn.execute(query).all())}


def changed_since(engine: sa.Engine, since: datetime | None) -> tuple[set[str], datetime]:
    """The projects with a deployment recorded or changed after `since` (every update of a
    deployment row sets its `updated_at`), and the database's time now, to ask from next."""
    with engine.connect() as conn:
        now: datetime = conn.execute(sa.select(sa.func.now())).scalar_one()
        if since is None:
            return set(), now
        names = conn.execute(
            sa.select(projects.c.name)
            .distinct()
            .join(deployments, deployments.c.project_id == projects.c.id)
            .where(deployments.c.updated_at > since)
        ).scalars()
        return set(names), now


def sealed_env(engine: sa.Engine, deployment_id: str) -> dict[str, str]:
    """A deployment's environment as it was sealed at submission."""
    with engine.connect() as conn:
        found = conn.execute(
            sa.select(deployments.c.sealed_env).where(deployments.c.id == deployment_id)
        ).scalar()
    return dict(found or {})


def project_exists(engine: sa.Engine, project: str) -> bool:
    """True if the project is recorded (deployed, pinned or given a source)."""
    with engine.connect() as conn:
        found = conn.execute(sa.select(projects.c.id).where(projects.c.name == project)).first()
    return found is not None


def project_server(engine: sa.Engine, project: str) -> str | None:
    """The server a project is pinned to, if it is recorded."""
    with engine.connect() as conn:
        return conn.execute(sa.select(projects.c.server).where(projects.c.name == project)).scalar()


def id_bounds(prefix: str) -> tuple[str, str]:
    """The lowest and the highest id that begin with `prefix`, a start of an id's canonical
    form: every id between them does, so the primary key's index finds them."""
    digits = prefix.replace("-", "").lower()
    return str(uuid.UUID(digits.ljust(32, "0"))), str(uuid.UUID(digits.ljust(32, "f")))


def recent(
    engine: sa.Engine,
    project: str | None,
    status: Status | None,
    limit: int,
    id_prefix: str | None = None,
) -> list[DeploymentView]:
    """The newest deployments, of one project, in one status and whose id begins with
    `id_prefix` when asked."""
    query = (
        sa.select(*_VIEW_COLUMNS)
        .join(projects, projects.c.id == deployments.c.project_id)
        .order_by(deployments.c.created_at.desc(), deployments.c.id)
        .limit(limit)
    )
    if project is not None:
        query = query.where(projects.c.name == project)
    if status is not None:
        query = query.where(deployments.c.status == status.value)
    if id_prefix is not None:
        query = query.where(deployments.c.id.between(*id_bounds(id_prefix)))
    with engine.connect() as conn:
        return _views(conn.execute(query).all())


def status_of(engine: sa.Engine, deployment_id: str) -> Status:
    """A recorded deployment's status."""
    with engine.connect() as conn:
        found = conn.execute(
            sa.select(deployments.c.status).where(deployments.c.id == deployment_id)
        ).scalar_one()
    return Status(found)
