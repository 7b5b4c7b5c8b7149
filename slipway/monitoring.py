"""The health monitor's records: each project's health in `projects.metadata`, and alerts,
one per episode (a unique key), so a check repeated every interval raises an alert once."""

from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import ARRAY, JSONB, insert

from slipway import metrics
from slipway.project_health import Alert, ProjectHealth, ProjectSummary
from slipway.tables import alerts, deployments, projects


def health_of(engine: sa.Engine, project: str) -> ProjectHealth:
    """A project's recorded health (unknown before the first check)."""
    with engine.connect() as conn:
        found = conn.execute(
            sa.select(projects.c.metadata["health"]).where(projects.c.name == project)
        ).scalar()
    return ProjectHealth.model_validate(found or {})


def save_health(engine: sa.Engine, project: str, health: ProjectHealth) -> None:
    """Replace the project's health, leaving the rest of its metadata alone."""
    document = health.model_dump(by_alias=True)
    with engine.begin() as conn:
        conn.execute(
            sa.update(projects)
            .where(projects.c.name == project)
            .values(
                metadata=sa.func.jsonb_set(
                    projects.c.metadata,
                    sa.literal(["health"], ARRAY(sa.Text)),
                    sa.cast(document, JSONB),
                    True,
                )
            )
        )


def raise_alert(
    engine: sa.Engine, project: str, kind: str, episode: str, message: str, meta: dict[str, Any]
) -> int | None:
    """Record an alert for an episode; None if that episode already has one."""
    with engine.begin() as conn:
        project_id = conn.execute(
            sa.select(projects.c.id).where(projects.c.name == project)
        ).scalar_one()
        row = conn.execute(
            insert(alerts)
            .values(
                project_id=project_id, kind=kind, episode=episode, message=message, metadata=meta
            )
            .on_conflict_do_nothing(index_elements=["episode"])
            .returning(alerts.c.id)
        ).first()
    if row is None:
        return None
    metrics.monitor_alerts.labels(kind).inc()
    return int(row[0])


_ALERT_COLUMNS = (
    alerts.c.id,
    projects.c.name.label("project"),
    alerts.c.kind,
    alerts.c.episode,
    alerts.c.message,
    alerts.c.metadata,
    alerts.c.created_at,
    alerts.c.delivered_at,
    alerts.c.resolved_at,
)


def get_alert(engine: sa.Engine, alert_id: int) -> Alert:
    """One alert."""
    query = sa.select(*_ALERT_COLUMNS).join(projects).where(alerts.c.id == alert_id)
    with engine.connect() as conn:
        return Alert.model_validate(conn.execute(query).one()._asdict())


def list_alerts(engine: sa.Engine, project: str | None = None) -> list[Alert]:
    """Alerts, newest first, of one project or all."""
    query = sa.select(*_ALERT_COLUMNS).join(projects).order_by(alerts.c.id.desc())
    if project is not None:
        query = query.where(projects.c.name == project)
    with engine.connect() as conn:
        return [Alert.model_validate(row._asdict()) for row in conn.execute(query)]


def mark_delivered(engine: sa.Engine, alert_id: int) -> None:
    """Note that the alert's webhook accepted it."""
    with engine.begin() as conn:
        conn.execute(
            sa.update(alerts).where(alerts.c.id == alert_id).values(delivered_at=sa.func.now())
        )


def resolve_alerts(engine: sa.Engine, project: str) -> int:
    """Resolve the project's open alerts (a heal or a new deployment ends their episodes)."""
    with engine.begin() as conn:
        project_id = sa.select(projects.c.id).where(projects.c.name == project).scalar_subquery()
        done = conn.execute(
            sa.update(alerts)
            .where(alerts.c.project_id == project_id, alerts.c.resolved_at.is_(None))
            .values(resolved_at=sa.func.now())
        )
    return int(done.rowcount)


def heal(engine: sa.Engine, project: str) -> ProjectHealth:
    """Resume healing a project: forget its restarts, lift the pause, resolve its alerts."""
    health = health_of(engine, project)
    health.restarts, health.healing_paused = [], False
    save_health(engine, project, health)
    resolve_alerts(engine, project)
    return health


def project_summaries(engine: sa.Engine) -> list[ProjectSummary]:
    """Every project with its health and the deployment serving it (the newest active); a
    removed preview is no longer one."""
    active = (
        sa.select(deployments.c.project_id, sa.func.max(deployments.c.phase_updated_at).label("at"))
        .where(deployments.c.status == "active")
        .group_by(deployments.c.project_id)
        .subquery()
    )
    serving = (
        sa.select(deployments.c.id)
        .join(
            active,
            sa.and_(
                active.c.project_id == deployments.c.project_id,
                active.c.at == deployments.c.phase_updated_at,
            ),
        )
        .where(deployments.c.project_id == projects.c.id, deployments.c.status == "active")
        .limit(1)
        .scalar_subquery()
    )
    count = (
        sa.select(sa.func.count())
        .where(deployments.c.project_id == projects.c.id)
        .scalar_subquery()
    )
    query = (
        sa.select(
            projects.c.name,
            projects.c.domain,
            projects.c.metadata,
            serving.label("serving"),
            count.label("deployments"),
        )
        .where(projects.c.removed_at.is_(None))
        .order_by(projects.c.name)
    )
    with engine.connect() as conn:
        return [
            ProjectSummary(
                name=row.name,
                domain=row.domain,
                health=ProjectHealth.model_validate(row.metadata.get("health") or {}),
                serving=str(row.serving) if row.serving else None,
                deployments=row.deployments,
            )
            for row in conn.execute(query)
        ]
