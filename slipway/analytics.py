"""Deployment analytics, read from the projection: how long each phase takes, where
deployments fail, how many succeed per day, and when a running one should end.

A phase's run lasts from its transition row (`Phase transition: ...`, see
`records.transition_message`) to the deployment's next transition row, so durations need no
column of their own and a retried activity, which writes no second row, counts once.
"""

from collections.abc import Mapping
from datetime import UTC, date, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from pydantic import BaseModel, ConfigDict
from pydantic.alias_generators import to_camel

from slipway.models import DeploymentView
from slipway.phases import WAITING, WORK_PHASES, DeploymentType, Mode, Phase, Status
from slipway.records import transition_message
from slipway.tables import deployment_logs, deployments

TRANSITION_PREFIX = transition_message(Phase.QUEUED, 0).split(Phase.QUEUED.value)[0]
"""What every transition row's message starts with."""

TIMED_PHASES: tuple[Phase, ...] = (Phase.QUEUED, *WORK_PHASES)
"""The phases that last: active and failed end a deployment (until it is resumed)."""


class Report(BaseModel):
    """Snake case in Python, camel case in JSON, like the stored metadata."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True)


class PhaseStats(Report):
    """A phase's finished runs in the window: how many, how long, how many ended the
    deployment as failed or cancelled."""

    phase: Phase
    count: int
    p50_seconds: float
    p95_seconds: float
    max_seconds: float
    failures: int
    cancellations: int


class DayStats(Report):
    """Deployments created on one UTC day, by how they stand now."""

    day: date
    deployments: int
    active: int
    failed: int
    cancelled: int
    success_rate: float | None
    """active / (active + failed); None while none of them succeeded or failed."""


class FailingPhase(Report):
    """A phase deployments failed in: how often, how often per run, and its share of all
    failures in the window."""

    phase: Phase
    failures: int
    failure_rate: float
    share: float


class Stats(Report):
    """Everything `slipway stats` and the analytics endpoint show for one window."""

    since: datetime
    phases: list[PhaseStats]
    days: list[DayStats]
    failing: list[FailingPhase]


class PhaseSpan(Report):
    """One phase of one deployment: when it began and ended; an end of None means it is
    running, or that it is the terminal active or failed."""

    phase: Phase
    started_at: datetime
    ended_at: datetime | None
    duration_seconds: float | None
    skipped: bool
    message: str


class Eta(Report):
    """When a deployment that has not ended should end, from recent per-phase medians."""

    remaining_seconds: float
    expected_at: datetime


def _runs(*where: sa.ColumnElement[bool]) -> sa.Subquery:
    """Transition rows, each with the time, phase and level of the deployment's next one."""
    logs = deployment_logs
    following: dict[str, Any] = {"partition_by": logs.c.deployment_id, "order_by": logs.c.id}
    return (
        sa.select(
            logs.c.deployment_id,
            logs.c.phase,
            logs.c.message,
            logs.c.timestamp.label("started_at"),
            logs.c.metadata.has_key("skipped").label("skipped"),
            sa.func.lead(logs.c.timestamp).over(**following).label("ended_at"),
            sa.func.lead(logs.c.phase).over(**following).label("next_phase"),
            sa.func.lead(logs.c.level).over(**following).label("next_level"),
        )
        .where(logs.c.message.startswith(TRANSITION_PREFIX, autoescape=True), *where)
        .subquery("runs")
    )


def phase_stats(engine: sa.Engine, since: datetime) -> list[PhaseStats]:
    """Per phase, its runs that began since `since` and have ended, skipped ones aside
    (they take no time and would drag the medians down)."""
    runs = _runs(deployment_logs.c.timestamp >= since)
    seconds = sa.extract("epoch", runs.c.ended_at - runs.c.started_at)
    ended_in_failed = runs.c.next_phase == Phase.FAILED.value
    query = (
        sa.select(
            runs.c.phase,
            sa.func.count(),
            sa.func.percentile_cont(0.5).within_group(seconds),
            sa.func.percentile_cont(0.95).within_group(seconds),
            sa.func.max(seconds),
            sa.func.count().filter(ended_in_failed & (runs.c.next_level == "error")),
            sa.func.count().filter(ended_in_failed & (runs.c.next_level != "error")),
        )
        .where(
            runs.c.ended_at.is_not(None),
            runs.c.phase.in_([p.value for p in TIMED_PHASES]),
            ~runs.c.skipped,
        )
        .group_by(runs.c.phase)
    )
    with engine.connect() as conn:
        rows = conn.execute(query).all()
    found = [
        PhaseStats(
            phase=Phase(phase),
            count=count,
            p50_seconds=float(p50),
            p95_seconds=float(p95),
            max_seconds=float(longest),
            failures=failures,
            cancellations=cancellations,
        )
        for phase, count, p50, p95, longest, failures, cancellations in rows
    ]
    return sorted(found, key=lambda s: TIMED_PHASES.index(s.phase))


def daily(engine: sa.Engine, since: datetime) -> list[DayStats]:
    """Deployments created since `since`, per UTC day, oldest day first."""
    day = sa.cast(sa.func.timezone("UTC", deployments.c.created_at), sa.Date)
    status = deployments.c.status
    query = (
        sa.select(
            day,
            sa.func.count(),
            sa.func.count().filter(status == Status.ACTIVE.value),
            sa.func.count().filter(status == Status.FAILED.value),
            sa.func.count().filter(status == Status.CANCELLED.value),
        )
        .where(deployments.c.created_at >= since)
        .group_by(day)
        .order_by(day)
    )
    with engine.connect() as conn:
        rows = conn.execute(query).all()
    return [
        DayStats(
            day=on,
            deployments=total,
            active=active,
            failed=failed,
            cancelled=cancelled,
            success_rate=active / (active + failed) if active + failed else None,
        )
        for on, total, active, failed, cancelled in rows
    ]


def failing_phases(phases: list[PhaseStats]) -> list[FailingPhase]:
    """The phases deployments failed in, most failures first."""
    total = sum(s.failures for s in phases)
    failing = [
        FailingPhase(
            phase=s.phase,
            failures=s.failures,
            failure_rate=s.failures / s.count,
            share=s.failures / total,
        )
        for s in phases
        if s.failures
    ]
    return sorted(failing, key=lambda f: (-f.failures, TIMED_PHASES.index(f.phase)))


def stats(engine: sa.Engine, window: timedelta) -> Stats:
    """The whole report for the last `window`; one longer than the calendar covers all."""
    try:
        since = datetime.now(UTC) - window
    except OverflowError:
        since = datetime.min.replace(tzinfo=UTC)
    phases = phase_stats(engine, since)
    return Stats(
        since=since, phases=phases, days=daily(engine, since), failing=failing_phases(phases)
    )


def timeline(engine: sa.Engine, deployment_id: str) -> list[PhaseSpan]:
    """Every phase a deployment went through, in order, with its start, end and duration
    (a resumed deployment shows the phases of each round)."""
    runs = _runs(deployment_logs.c.deployment_id == deployment_id)
    lasting = runs.c.phase.in_([p.value for p in TIMED_PHASES])
    query = sa.select(
        runs.c.phase,
        runs.c.started_at,
        sa.case((lasting, runs.c.ended_at)),
        runs.c.skipped,
        runs.c.message,
    ).order_by(runs.c.started_at)
    with engine.connect() as conn:
        rows = conn.execute(query).all()
    return [
        PhaseSpan(
            phase=Phase(phase),
            started_at=started,
            ended_at=ended,
            duration_seconds=(ended - started).total_seconds() if ended else None,
            skipped=skipped,
            message=message,
        )
        for phase, started, ended, skipped, message in rows
    ]


def medians(phases: list[PhaseStats]) -> dict[Phase, float]:
    """Each phase's median duration, the basis of an ETA."""
    return {s.phase: s.p50_seconds for s in phases}


def recent_medians(engine: sa.Engine, window: timedelta = timedelta(days=7)) -> dict[Phase, float]:
    """The medians an ETA is based on: those of the last week."""
    return medians(phase_stats(engine, datetime.now(UTC) - window))


def _ahead(view: DeploymentView) -> list[Phase]:
    """The phases a deployment has still to run after its current one: a rollback skips
    the source phases, an app (known once built) skips copying and linking."""
    order = list(TIMED_PHASES)
    skipped: set[Phase] = set()
    if view.details.mode is Mode.ROLLBACK:
        skipped |= {Phase.PULLING_SOURCE, Phase.BUILDING, Phase.COPYING_FILES}
    if (view.details.deployment_type or DeploymentType.STATIC) is not DeploymentType.STATIC:
        skipped |= {Phase.COPYING_FILES, Phase.CREATING_SYMLINKS}
    return [p for p in order[order.index(view.phase) + 1 :] if p not in skipped]


def eta(view: DeploymentView, typical: Mapping[Phase, float], now: datetime) -> Eta | None:
    """The rest of the current phase's median (never below zero) plus the medians of the
    phases ahead; None for a deployment that has ended or when no median is known yet."""
    if view.status not in WAITING or view.phase not in TIMED_PHASES:
        return None
    ahead = _ahead(view)
    if view.phase not in typical and not any(p in typical for p in ahead):
        return None
    elapsed = (now - view.phase_updated_at).total_seconds()
    remaining = max(typical.get(view.phase, 0.0) - elapsed, 0.0)
    remaining += sum(typical.get(p, 0.0) for p in ahead)
    return Eta(
        remaining_seconds=round(remaining, 1), expected_at=now + timedelta(seconds=remaining)
    )
