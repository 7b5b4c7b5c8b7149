"""Reads and writes of the deployment projection in PostgreSQL.

A phase transition is one transaction: the log row is inserted under a unique event key and
the deployment row is updated only when that insert happened, so a retried activity neither
adds a second transition nor moves the row again.
"""

from collections.abc import Sequence
from datetime import timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB, insert

from slipway.models import DeploymentInput, DeploymentView, LogEntry, Metadata
from slipway.phases import PROGRESS, STATUS, Phase, Status
from slipway.tables import deployment_logs, deployments, projects

_EVENT_WHERE = sa.text("event_key IS NOT NULL")


def transition_message(phase: Phase, progress: int) -> str:
    """The log line of a transition, in the seed's words."""
    return f"Phase transition: {phase.value} ({progress}%)"


def _insert_event(
    conn: sa.Connection,
    deployment_id: str,
    phase: Phase,
    message: str,
    metadata: Metadata,
    event_key: str,
    level: str = "info",
) -> bool:
    row = conn.execute(
        insert(deployment_logs)
        .values(
            deployment_id=deployment_id,
            phase=phase.value,
            level=level,
            message=message,
            metadata=metadata,
            event_key=event_key,
        )
        .on_conflict_do_nothing(
            index_elements=["deployment_id", "event_key"], index_where=_EVENT_WHERE
        )
        .returning(deployment_logs.c.id)
    ).first()
    return row is not None


def register(engine: sa.Engine, deployment: DeploymentInput, domain: str) -> bool:
    """Create the project if new and the deployment in phase queued; False if it existed."""
    with engine.begin() as conn:
        conn.execute(
            insert(projects)
            .values(name=deployment.project, domain=domain)
            .on_conflict_do_nothing(index_elements=["name"])
        )
        project_id = conn.execute(
            sa.select(projects.c.id).where(projects.c.name == deployment.project)
        ).scalar_one()
        created = conn.execute(
            insert(deployments)
            .values(
                id=deployment.deployment_id,
                project_id=project_id,
                status=Status.QUEUED.value,
                phase=Phase.QUEUED.value,
                workflow_id=deployment_workflow_id(deployment.deployment_id),
                source=deployment.source,
            )
            .on_conflict_do_nothing(index_elements=["id"])
            .returning(deployments.c.id)
        ).first()
        if created is None:
            return False
        _insert_event(
            conn,
            deployment.deployment_id,
            Phase.QUEUED,
            transition_message(Phase.QUEUED, 0),
            {},
            transition_key(Phase.QUEUED),
        )
        return True


def transition_key(phase: Phase) -> str:
    """The event key that makes a phase's transition row unique per deployment."""
    return f"transition:{phase.value}"


def deployment_workflow_id(deployment_id: str) -> str:
    """The workflow id of a deployment: one workflow per deployment, found from its id."""
    return f"deploy-{deployment_id}"


def record_transition(
    engine: sa.Engine,
    deployment_id: str,
    phase: Phase,
    metadata: Metadata,
    *,
    status: Status | None = None,
    level: str = "info",
) -> bool:
    """Move a deployment into `phase` with its metadata; False if this transition was recorded
    before (a retry), in which case nothing changes."""
    progress = PROGRESS[phase]
    with engine.begin() as conn:
        if not _insert_event(
            conn,
            deployment_id,
            phase,
            transition_message(phase, progress),
            metadata,
            transition_key(phase),
            level,
        ):
            return False
        conn.execute(
            sa.update(deployments)
            .where(deployments.c.id == deployment_id)
            .values(
                status=(status or STATUS[phase]).value,
                phase=phase.value,
                phase_progress=progress,
                phase_metadata=metadata,
                phase_updated_at=sa.func.now(),
                updated_at=sa.func.now(),
            )
        )
        return True


def record_progress(
    engine: sa.Engine, deployment_id: str, phase: Phase, progress: int, patch: Metadata
) -> None:
    """Raise a running phase's progress and merge `patch` into its metadata; progress never
    goes back and a phase that has ended is left alone."""
    with engine.begin() as conn:
        conn.execute(
            sa.update(deployments)
            .where(deployments.c.id == deployment_id, deployments.c.phase == phase.value)
            .values(
                phase_progress=sa.func.greatest(deployments.c.phase_progress, progress),
                phase_metadata=deployments.c.phase_metadata.op("||")(sa.cast(patch, JSONB)),
                updated_at=sa.func.now(),
            )
        )


def add_log(
    engine: sa.Engine,
    deployment_id: str,
    phase: Phase,
    message: str,
    *,
    level: str = "info",
    metadata: Metadata | None = None,
    event_key: str | None = None,
) -> None:
    """Append a log line; with an event key, a retried write adds nothing."""
    with engine.begin() as conn:
        if event_key is None:
            conn.execute(
                sa.insert(deployment_logs).values(
                    deployment_id=deployment_id,
                    phase=phase.value,
                    level=level,
                    message=message,
                    metadata=metadata or {},
                )
            )
        else:
            _insert_event(conn, deployment_id, phase, message, metadata or {}, event_key, level)


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


def stuck_query(older_than: timedelta) -> sa.Select[Any]:
    """The seed's stuck-deployment query: in progress, and in the same phase for too long.
    It is served by idx_deployments_stuck (status, phase_updated_at)."""
    in_progress = [Status.BUILDING.value, Status.DEPLOYING.value]
    return (
        sa.select(*_VIEW_COLUMNS)
        .join(projects, projects.c.id == deployments.c.project_id)
        .where(
            deployments.c.status.in_(in_progress),
            deployments.c.phase_updated_at < sa.func.now() - older_than,
        )
        .order_by(deployments.c.phase_updated_at)
    )


def find_stuck(engine: sa.Engine, older_than: timedelta) -> list[DeploymentView]:
    """Deployments in progress whose phase has not changed for longer than `older_than`."""
    with engine.connect() as conn:
        return _views(conn.execute(stuck_query(older_than)).all())
