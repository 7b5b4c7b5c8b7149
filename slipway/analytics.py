"""Deployment analytics, read from the projection: how long each phase takes, where
deployments fail, how many succeed per day, and when a running one should end.

A phase's run lasts from its transition row (`Phase transition: ...`, see
`records.transition_message`) to the deployment's next transition row, so a retried
activity, which writes no second row, counts once. The report over a window reads the
rollups the transitions keep (`slipway.rollups`); one deployment's timeline reads its rows.
"""

import itertools
from collections.abc import Mapping
from datetime import UTC, date, datetime, timedelta
from typing import Any

import sqlalchemy as sa
from pydantic import BaseModel, ConfigDict
from pydantic.alias_generators import to_camel

from slipway import rollups
from slipway.models import DeploymentView
from slipway.phases import WAITING, DeploymentType, Mode, Phase, Status
from slipway.rollups import TIMED_PHASES, TRANSITION_PREFIX
from slipway.tables import deployment_days, deployment_logs, phase_rollup


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
    """Per phase, its runs that began since `since` (from the hour it falls in) and have
    ended, skipped ones aside (they take no time and would drag the medians down); read
    from the hourly rollup, so percentiles are within about 2.5% (`slipway.rollups`)."""
    r = phase_rollup
    query = (
        sa.select(
            r.c.phase,
            r.c.bucket,
            sa.func.sum(r.c.runs),
            sa.func.sum(r.c.failures),
            sa.func.sum(r.c.cancellations),
            sa.func.max(r.c.max_seconds),
        )
        .where(r.c.hour >= sa.func.date_trunc("hour", since, "UTC"))
        .group_by(r.c.phase, r.c.bucket)
        .order_by(r.c.phase, r.c.bucket)
    )
    with engine.connect() as conn:
        rows = conn.execute(query).all()
    found: list[PhaseStats] = []
    for phase, group in itertools.groupby(rows, key=lambda row: row[0]):
        runs = list(group)
        histogram = [(int(bucket), int(count)) for _, bucket, count, _, _, _ in runs]
        longest = max(float(row[5]) for row in runs)
        found.append(
            PhaseStats(
                phase=Phase(phase),
                count=sum(count for _, count in histogram),
                p50_seconds=rollups.percentile(histogram, 0.5, longest),
                p95_seconds=rollups.percentile(histogram, 0.95, longest),
                max_seconds=longest,
                failures=sum(int(row[3]) for row in runs),
                cancellations=sum(int(row[4]) for row in runs),
            )
        )
    return sorted(found, key=lambda s: TIMED_PHASES.index(s.phase))


def daily(engine: sa.Engine, since: datetime) -> list[DayStats]:
    """Deployments created since `since` (from the UTC day it falls on), per UTC day, oldest
    day first, by how they stand now."""
    d = deployment_days
    count = sa.func.coalesce(sa.func.sum(d.c.deployments), 0)

    def of(status: Status) -> sa.ColumnElement[int]:
        return sa.func.coalesce(sa.func.sum(d.c.deployments).filter(d.c.status == status.value), 0)

    query = (
        sa.select(d.c.day, count, of(Status.ACTIVE), of(Status.FAILED), of(Status.CANCELLED))
        .where(d.c.day >= sa.cast(sa.func.timezone("UTC", since), sa.Date))
        .group_by(d.c.day)
        .having(count > 0)
        .order_by(d.c.day)
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
    remaining = round(remaining, 1)
    return Eta(remaining_seconds=remaining, expected_at=now + timedelta(seconds=remaining))
