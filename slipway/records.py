"""Writes of the deployment projection in PostgreSQL.

A phase transition is one transaction: the log row is inserted under a unique event key and
the deployment row is updated only when that insert happened, so a retried activity neither
adds a second transition nor moves the row again.
"""

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import Enum

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB, insert

from slipway import metrics, rollups
from slipway.metadata import Metadata, PhaseMetadata
from slipway.models import DeploymentInput
from slipway.phases import PROGRESS, STATUS, Phase, Status
from slipway.previews import register_preview
from slipway.tables import deployment_logs, deployments, projects
from slipway.turns import Opening, take
from slipway.workflow_ids import deployment_workflow_id

log = logging.getLogger("slipway.deployments")

_EVENT_WHERE = sa.text("event_key IS NOT NULL")


def transition_message(phase: Phase, progress: int) -> str:
    """The log line of a transition, in the seed's words."""
    return f"{rollups.TRANSITION_PREFIX}{phase.value} ({progress}%)"


def _reason(details: PhaseMetadata, status: Status | None) -> str:
    """The last line of a deployment that ended without going active: how, where and why."""
    ended = (status or Status.FAILED).value
    where = f" in {details.failed_phase.value}" if details.failed_phase else ""
    return f"{ended.capitalize()}{where}: {details.error or 'no reason was recorded'}"


class Registered(Enum):
    """What registering a deployment did."""

    EXISTED = "existed"
    """It was recorded already: nothing new."""
    QUEUED = "queued"
    """Recorded queued, to be handed to its project's serializer."""
    IN_TURN = "in_turn"
    """Recorded queued, holding its project's turn: its own workflow may start at once."""


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


def register(
    engine: sa.Engine,
    deployment: DeploymentInput,
    domain: str,
    details: PhaseMetadata,
    sealed_env: Mapping[str, str] | None = None,
    opening: Opening | None = None,
) -> Registered:
    """Create the project if new and the deployment in phase queued (`EXISTED` if it
    existed). `sealed_env` is the deployment's own environment overrides, sealed (by default
    what its input carried, for a deployment recorded before environment versions). With
    `opening`, the project's turn is taken for the deployment in the same transaction if
    it is still where the opening found it (`IN_TURN`: its workflow may start at once)."""
    metadata = details.stored()
    with engine.begin() as conn:
        # A project made before its first deployment (its source set) is pinned by it.
        conn.execute(
            insert(projects)
            .values(name=deployment.project, domain=domain, server=deployment.server)
            .on_conflict_do_update(
                index_elements=["name"],
                set_={"server": sa.func.coalesce(projects.c.server, deployment.server)},
            )
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
                phase_metadata=metadata,
                sealed_env=dict(deployment.env if sealed_env is None else sealed_env),
            )
            .on_conflict_do_nothing(index_elements=["id"])
            .returning(deployments.c.id)
        ).first()
        if created is None:
            return Registered.EXISTED
        rollups.move_day(conn, deployment.deployment_id, None, Status.QUEUED.value)
        if deployment.preview_of:
            register_preview(conn, deployment.project, deployment.preview_of, domain)
        _insert_event(
            conn,
            deployment.deployment_id,
            Phase.QUEUED,
            transition_message(Phase.QUEUED, 0),
            metadata,
            transition_key(Phase.QUEUED),
        )
        in_turn = opening is not None and take(
            conn, deployment.project, opening, deployment.deployment_id
        )
    metrics.deployments_started.labels(deployment.project).inc()
    metrics.phase_transitions.labels(Phase.QUEUED.value).inc()
    log.info(
        transition_message(Phase.QUEUED, 0),
        extra=_fields(deployment.deployment_id, deployment.project, Phase.QUEUED),
    )
    return Registered.IN_TURN if in_turn else Registered.QUEUED


_ALWAYS = frozenset({"skipped"})
"""Keys a transition's log row keeps even when the row before had them: they describe the
transition itself, not the deployment."""


def _changed(before: Metadata, after: Metadata) -> Metadata:
    """What a transition changed: the row's log keeps only that, the row keeps it all."""
    return {
        key: value for key, value in after.items() if key in _ALWAYS or before.get(key) != value
    }


def transition_key(phase: Phase, round: int = 0) -> str:
    """The event key that makes a phase's transition row unique per deployment and round
    (a resumed deployment runs its unfinished phases again, in a new round)."""
    return f"transition:{phase.value}" + (f":r{round}" if round else "")


def supersede(engine: sa.Engine, deployment_id: str, by: str) -> bool:
    """Mark a queued deployment superseded by a newer one; it will never run. False if it
    was no longer queued."""
    with engine.begin() as conn:
        changed = conn.execute(
            sa.update(deployments)
            .where(deployments.c.id == deployment_id, deployments.c.status == Status.QUEUED.value)
            .values(
                status=Status.SUPERSEDED.value,
                phase_metadata=deployments.c.phase_metadata.op("||")(
                    sa.cast(PhaseMetadata(superseded_by=by).stored(), JSONB)
                ),
                updated_at=sa.func.now(),
            )
            .returning(deployments.c.id)
        ).first()
        if changed is None:
            return False
        rollups.move_day(conn, deployment_id, Status.QUEUED.value, Status.SUPERSEDED.value)
        _insert_event(
            conn,
            deployment_id,
            Phase.QUEUED,
            f"Superseded by {by} before it ran",
            PhaseMetadata(superseded_by=by).stored(),
            "superseded",
        )
        project = _project_of(conn, deployment_id)
    metrics.deployments_ended.labels(project, Status.SUPERSEDED.value).inc()
    log.info(
        "Superseded by %s before it ran",
        by,
        extra=_fields(deployment_id, project, Phase.QUEUED, status=Status.SUPERSEDED.value),
    )
    return True


def _project_of(conn: sa.Connection, deployment_id: str) -> str:
    return str(
        conn.execute(
            sa.select(projects.c.name)
            .join(deployments, deployments.c.project_id == projects.c.id)
            .where(deployments.c.id == deployment_id)
        ).scalar_one()
    )


def _fields(deployment_id: str, project: str, phase: Phase, **more: object) -> dict[str, object]:
    """A log record's structured fields (see `slipway.logs`)."""
    return {"deployment_id": deployment_id, "project": project, "phase": phase.value, **more}


@dataclass(frozen=True)
class _Before:
    """The deployment row as a transition found it."""

    project: str
    phase: Phase
    status: str
    metadata: Metadata
    seconds_in_phase: float
    progress: int


def _before(conn: sa.Connection, deployment_id: str) -> _Before | None:
    """The deployment row a transition moves, locked until the transition commits."""
    found = conn.execute(
        sa.select(
            projects.c.name,
            deployments.c.phase,
            deployments.c.status,
            deployments.c.phase_metadata,
            sa.func.extract("epoch", sa.func.now() - deployments.c.phase_updated_at),
            deployments.c.phase_progress,
        )
        .join(projects, projects.c.id == deployments.c.project_id)
        .where(deployments.c.id == deployment_id)
        .with_for_update(of=deployments)
    ).first()
    if found is None:
        return None
    name, phase, status, metadata, seconds, progress = found
    return _Before(
        name, Phase(phase), status, metadata or {}, max(0.0, float(seconds or 0)), progress
    )


def _count_transition(
    deployment_id: str, before: _Before, phase: Phase, metadata: Metadata, status: Status
) -> None:
    """Move the counters for a transition that was inserted, and log it: the phase that
    ended (unless it was skipped or an end) observed, the deployment's end counted."""
    ended = before.phase
    if ended not in (Phase.ACTIVE, Phase.FAILED) and not before.metadata.get("skipped"):
        kind = metadata.get("deploymentType") or before.metadata.get("deploymentType")
        metrics.phase_duration.labels(ended.value, str(kind or "unknown")).observe(
            before.seconds_in_phase
        )
    metrics.phase_transitions.labels(phase.value).inc()
    fields = _fields(deployment_id, before.project, phase, status=status.value)
    if phase is Phase.FAILED:
        failed_in = str(metadata.get("failedPhase") or ended.value)
        metrics.deployments_ended.labels(before.project, status.value).inc()
        metrics.deployment_failures.labels(failed_in, status.value).inc()
        log.warning(
            "Deployment %s in %s: %s",
            status.value,
            failed_in,
            metadata.get("error") or metadata.get("reason") or "no reason recorded",
            extra={**fields, "failed_phase": failed_in},
        )
        return
    if phase is Phase.ACTIVE:
        metrics.deployments_ended.labels(before.project, status.value).inc()
    log.info(
        transition_message(phase, PROGRESS[phase]),
        extra={**fields, "skipped": bool(metadata.get("skipped"))},
    )


def record_transition(
    engine: sa.Engine,
    deployment_id: str,
    phase: Phase,
    details: PhaseMetadata,
    *,
    round: int = 0,
    status: Status | None = None,
    level: str = "info",
    queued_of: str | None = None,
    also: Callable[[sa.Connection], object] | None = None,
) -> bool:
    """Move a deployment into `phase` with its metadata; False if this transition was recorded
    before (a retry), in which case nothing changes. A deployment that ends without going
    active keeps the progress it reached, and its log ends with the reason. With
    `queued_of`, only a row of that project still queued moves (checked in the same
    transaction, its row locked). `also` writes what goes with the transition, in its
    transaction."""
    metadata = details.stored()
    after = status or STATUS[phase]
    with engine.begin() as conn:
        before = _before(conn, deployment_id)
        if queued_of is not None and (
            before is None or before.project != queued_of or before.status != Status.QUEUED.value
        ):
            return False
        progress = PROGRESS[phase]
        if phase is Phase.FAILED and before is not None:
            progress = before.progress
        key = transition_key(phase, round)
        if not _insert_event(
            conn,
            deployment_id,
            phase,
            transition_message(phase, progress),
            _changed(before.metadata if before is not None else {}, metadata),
            key,
            level,
        ):
            return False
        if before is not None:
            ended = (before.phase, before.status, before.metadata)
            _roll_up(conn, deployment_id, ended, phase, after, level)
        if phase is Phase.FAILED:
            _insert_event(
                conn, deployment_id, phase, _reason(details, status), {}, f"reason:{key}", level
            )
        conn.execute(
            sa.update(deployments)
            .where(deployments.c.id == deployment_id)
            .values(
                status=after.value,
                phase=phase.value,
                phase_progress=progress,
                phase_metadata=metadata,
                phase_updated_at=sa.func.now(),
                updated_at=sa.func.now(),
            )
        )
        if also is not None:
            also(conn)
    if before is not None:
        _count_transition(deployment_id, before, phase, metadata, after)
    return True


def _roll_up(
    conn: sa.Connection,
    deployment_id: str,
    before: tuple[Phase, str, Metadata],
    phase: Phase,
    after: Status,
    level: str,
) -> None:
    """Count the phase run this transition ends (`before`: that phase, the status and the
    metadata the row had; a skipped run takes no time and is left out, as a terminal phase
    that is resumed) and the deployment's change of status."""
    ended, status, metadata = before
    if ended in rollups.TIMED_PHASES and "skipped" not in metadata:
        failed = phase is Phase.FAILED
        rollups.add_run(
            conn,
            deployment_id,
            ended,
            failed=failed and level == "error",
            cancelled=failed and level != "error",
        )
    rollups.move_day(conn, deployment_id, status, after.value)


def record_progress(
    engine: sa.Engine, deployment_id: str, phase: Phase, progress: int, patch: PhaseMetadata
) -> None:
    """Raise a running phase's progress and merge `patch` into its metadata; progress never
    goes back and a phase that has ended is left alone."""
    with engine.begin() as conn:
        conn.execute(
            sa.update(deployments)
            .where(deployments.c.id == deployment_id, deployments.c.phase == phase.value)
            .values(
                phase_progress=sa.func.greatest(deployments.c.phase_progress, progress),
                phase_metadata=deployments.c.phase_metadata.op("||")(
                    sa.cast(patch.stored(), JSONB)
                ),
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


def pin(engine: sa.Engine, project: str, server: str, domain: str) -> None:
    """Pin a project to a server: its next deployments run their host-bound work there."""
    with engine.begin() as conn:
        conn.execute(
            insert(projects)
            .values(name=project, domain=domain, server=server)
            .on_conflict_do_update(index_elements=["name"], set_={"server": server})
        )
