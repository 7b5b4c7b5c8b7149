"""A project's lifecycle in the database: whether it is stopped (kept under
`projects.metadata.lifecycle`, beside the monitor's health), each stop, start and restart in
its history, and what a delete must remove: the servers it has files on, its deployments and
uploads, and at last every row of it."""

from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import ARRAY, JSONB

from slipway.models import LifecycleAction, LifecycleRecord, ProjectInventory
from slipway.phases import WAITING
from slipway.settings import host_task_queue
from slipway.tables import alerts, deployments, domains, env_versions, project_events, projects

STOPPED = "stopped"
RUNNING = "running"


class ProjectNotFoundError(Exception):
    """No project of that name is recorded."""


def _project_id(conn: sa.Connection, project: str) -> int:
    found = conn.execute(sa.select(projects.c.id).where(projects.c.name == project)).scalar()
    if found is None:
        raise ProjectNotFoundError(f"no project {project!r} is recorded")
    return int(found)


def require_project(engine: sa.Engine, project: str) -> None:
    """Raise `ProjectNotFoundError` unless the project is recorded."""
    with engine.connect() as conn:
        _project_id(conn, project)


def state_of(engine: sa.Engine, project: str) -> str:
    """`stopped` or `running` (a project never stopped, or started again)."""
    with engine.connect() as conn:
        found = conn.execute(
            sa.select(projects.c.metadata["lifecycle"]["state"].astext).where(
                projects.c.name == project
            )
        ).scalar()
    return STOPPED if found == STOPPED else RUNNING


def _set(metadata: Any, key: str, value: Any) -> Any:
    return sa.func.jsonb_set(
        metadata, sa.literal([key], ARRAY(sa.Text)), sa.cast(value, JSONB), True
    )


def _health_status(status: str) -> Any:
    """The project's health with only its status replaced (its restarts and alerts' episodes
    stay: a stop or restart is no heal)."""
    health = sa.func.coalesce(projects.c.metadata["health"], sa.cast({}, JSONB))
    return health.op("||")(sa.cast({"status": status}, JSONB))


def record(engine: sa.Engine, done: LifecycleRecord) -> bool:
    """Record a stop, start or restart: the project's state and its health (`stopped`, which
    the monitor leaves alone, or unknown until its next look) and a line in its history, in
    one transaction. Idempotent: an operation already recorded is not recorded again (False)."""
    state = STOPPED if done.stopped else RUNNING
    with engine.begin() as conn:
        project_id = _project_id(conn, done.project)
        seen = conn.execute(
            sa.select(project_events.c.id).where(
                project_events.c.project_id == project_id,
                project_events.c.metadata["operation"].astext == done.operation_id,
            )
        ).first()
        if seen is not None:
            return False
        conn.execute(
            sa.update(projects)
            .where(projects.c.id == project_id)
            .values(
                metadata=_set(
                    _set(projects.c.metadata, "lifecycle", {"state": state}),
                    "health",
                    _health_status(STOPPED if done.stopped else "unknown"),
                )
            )
        )
        conn.execute(
            sa.insert(project_events).values(
                project_id=project_id,
                kind=done.action.value,
                message=done.message,
                metadata={"operation": done.operation_id, "state": state},
            )
        )
    return True


def started_by_deployment(conn: sa.Connection, project: str, deployment_id: str) -> bool:
    """A deployment went active on a stopped project, which runs again: its state and a line
    in its history, in the caller's transaction (the one that records it active).
    Idempotent: only a stopped project changes."""
    project_id = _project_id(conn, project)
    changed = conn.execute(
        sa.update(projects)
        .where(
            projects.c.id == project_id,
            projects.c.metadata["lifecycle"]["state"].astext == STOPPED,
        )
        .values(metadata=_set(projects.c.metadata, "lifecycle", {"state": RUNNING}))
    )
    if not changed.rowcount:
        return False
    conn.execute(
        sa.insert(project_events).values(
            project_id=project_id,
            kind=LifecycleAction.START.value,
            message=f"Started again by deployment {deployment_id}",
            metadata={"deployment": deployment_id, "state": RUNNING},
        )
    )
    return True


def host_queues(engine: sa.Engine, task_queue: str, project: str, default_server: str) -> list[str]:
    """The queues of the servers the project has files on: the one it is pinned to first
    (this server, if it is pinned to none), then any its earlier deployments ran on."""
    with engine.connect() as conn:
        pinned = conn.execute(
            sa.select(projects.c.server).where(projects.c.name == project)
        ).scalar()
        recorded = conn.execute(
            sa.select(deployments.c.phase_metadata["hostQueue"].astext)
            .join(projects, projects.c.id == deployments.c.project_id)
            .where(projects.c.name == project)
            .distinct()
        ).scalars()
        queues = [host_task_queue(task_queue, pinned or default_server)]
        queues += sorted({q for q in recorded if q} - set(queues))
    return queues


def running_deployments(engine: sa.Engine, project: str) -> list[str]:
    """The project's deployments queued or under way, as recorded."""
    with engine.connect() as conn:
        return [
            str(found)
            for found in conn.execute(
                sa.select(deployments.c.id)
                .join(projects, projects.c.id == deployments.c.project_id)
                .where(
                    projects.c.name == project,
                    deployments.c.status.in_([s.value for s in WAITING]),
                )
            ).scalars()
        ]


def inventory(engine: sa.Engine, project: str) -> ProjectInventory:
    """Every deployment of the project and every upload they came from (none if the project
    is gone already: a repeated delete finds nothing)."""
    with engine.connect() as conn:
        rows = conn.execute(
            sa.select(deployments.c.id, deployments.c.phase_metadata["uploadId"].astext)
            .join(projects, projects.c.id == deployments.c.project_id)
            .where(projects.c.name == project)
        ).all()
    return ProjectInventory(
        deployment_ids=sorted(str(r[0]) for r in rows),
        upload_ids=sorted({str(r[1]) for r in rows if r[1]}),
    )


def remove_rows(engine: sa.Engine, project: str) -> int:
    """Delete every row of the project: its deployments with their logs, domains, alerts,
    history, environment versions, the rows of its removed previews, and the project itself
    (with its source, sealed secrets and health), in one transaction. Idempotent: a project
    already gone removes nothing (0)."""
    with engine.begin() as conn:
        try:
            project_id = _project_id(conn, project)
        except ProjectNotFoundError:
            return 0
        # Previews removed earlier keep their rows (their history) until their project goes.
        owned = [
            project_id,
            *conn.execute(sa.select(projects.c.id).where(projects.c.preview_of == project_id))
            .scalars()
            .all(),
        ]
        for table in (deployments, domains, alerts, project_events, env_versions):
            conn.execute(sa.delete(table).where(table.c.project_id.in_(owned)))
        conn.execute(sa.delete(projects).where(projects.c.preview_of == project_id))
        conn.execute(sa.delete(projects).where(projects.c.id == project_id))
    return 1
