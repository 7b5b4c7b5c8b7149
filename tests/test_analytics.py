"""Analytics on a database of their own, filled with deployments whose every transition time
is known, so each figure can be checked exactly; and the timeline of a real deployment."""

import itertools
import json
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from temporalio.client import Client

from slipway import analytics, queries, records, rollups
from slipway.database import engine_for, migrate
from slipway.metadata import PhaseMetadata
from slipway.models import DeploymentInput
from slipway.phases import PROGRESS, Phase, Status
from slipway.records import transition_message
from slipway.settings import Settings
from slipway.tables import deployment_days, deployment_logs, deployments, phase_rollup, projects
from tests.helpers import deploy_and_wait, make_site
from tests.running import RunningWorker
from tests.test_cli import slipway

P = Phase
BUCKET = rollups.RATIO**0.5 - 1
"""How far a percentile read from the rollup may be from the exact one."""
TODAY = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
DAY1 = TODAY - timedelta(days=2) + timedelta(hours=10)
DAY2 = TODAY - timedelta(days=1) + timedelta(hours=10)

# Deployment: (created, status, [(phase, seconds after created, level, skipped)...], metadata)
Step = tuple[Phase, float, str, bool]
FULL = [P.QUEUED, P.PULLING_SOURCE, P.BUILDING, P.COPYING_FILES]
SWITCH = [P.CREATING_SYMLINKS, P.UPDATING_ROUTES, P.HEALTH_CHECK, P.ACTIVE]


def steps(offsets: list[float], phases: list[Phase], level: str = "info") -> list[Step]:
    return [(phase, at, level, False) for phase, at in zip(phases, offsets, strict=True)]


SCENARIO: dict[str, tuple[datetime, str, list[Step]]] = {
    # building 10 s, copying 1 s
    "a": (DAY1, "active", steps([0, 2, 5, 15, 16, 17, 18, 20], FULL + SWITCH)),
    # building 20 s, copying 1 s
    "b": (DAY1, "active", steps([0, 4, 6, 26, 27, 28, 30, 31], FULL + SWITCH)),
    # fails after 30 s of building
    "c": (
        DAY2,
        "failed",
        [*steps([0, 1, 2], FULL[:3]), (P.FAILED, 32, "error", False)],
    ),
    # cancelled after 5 s of copying (building 4 s)
    "d": (
        DAY2,
        "cancelled",
        [*steps([0, 1, 2, 6], FULL), (P.FAILED, 11, "warning", False)],
    ),
    # an app: building 8 s, copying skipped
    "e": (
        DAY2,
        "active",
        [
            *steps([0, 1, 2], FULL[:3]),
            (P.COPYING_FILES, 10, "info", True),
            *steps([10, 12, 13, 15], SWITCH),
        ],
    ),
    # still building
    "f": (DAY2, "building", steps([0, 1, 2], FULL[:3])),
}


@pytest.fixture
def own_database(base_settings: Settings) -> Iterator[str]:
    """A fresh database on the session's server: the analytics read every row of a window."""
    name = f"analytics_{uuid.uuid4().hex[:12]}"
    with (
        engine_for(base_settings.sqlalchemy_url)
        .connect()
        .execution_options(isolation_level="AUTOCOMMIT") as conn
    ):
        conn.execute(sa.text(f'CREATE DATABASE "{name}" TEMPLATE template0'))
    url = sa.make_url(base_settings.sqlalchemy_url).set(database=name)
    rendered = url.render_as_string(hide_password=False)
    migrate(rendered)
    yield rendered
    engine_for(rendered).dispose()
    with (
        engine_for(base_settings.sqlalchemy_url)
        .connect()
        .execution_options(isolation_level="AUTOCOMMIT") as conn
    ):
        conn.execute(sa.text(f'DROP DATABASE "{name}" WITH (FORCE)'))


@pytest.fixture
def filled(own_database: str) -> tuple[sa.Engine, dict[str, str]]:
    """The scenario's deployments written as the workers would have; returns their ids."""
    engine = engine_for(own_database)
    ids = {name: str(uuid.uuid4()) for name in SCENARIO}
    with engine.begin() as conn:
        project_id = conn.execute(
            sa.insert(projects)
            .values(name="stats", domain="stats.localhost")
            .returning(projects.c.id)
        ).scalar_one()
        for name, (created, status, history) in SCENARIO.items():
            last_phase, last_at, _, _ = history[-1]
            conn.execute(
                sa.insert(deployments).values(
                    id=ids[name],
                    project_id=project_id,
                    status=status,
                    phase=last_phase.value,
                    phase_progress=PROGRESS[last_phase],
                    phase_metadata={"deploymentType": "container"} if name == "e" else {},
                    phase_updated_at=created + timedelta(seconds=last_at),
                    created_at=created,
                    updated_at=created + timedelta(seconds=last_at),
                    workflow_id=f"deploy-{ids[name]}",
                )
            )
            for i, (phase, at, level, skipped) in enumerate(history):
                conn.execute(
                    sa.insert(deployment_logs).values(
                        deployment_id=ids[name],
                        timestamp=created + timedelta(seconds=at),
                        level=level,
                        phase=phase.value,
                        message=transition_message(phase, PROGRESS[phase]),
                        metadata={"skipped": True} if skipped else {},
                        event_key=f"transition:{phase.value}:{i}",
                    )
                )
                conn.execute(
                    sa.insert(deployment_logs).values(
                        deployment_id=ids[name],
                        timestamp=created + timedelta(seconds=at),
                        phase=phase.value,
                        message="a build line, not a transition",
                    )
                )
        rollups.refill(conn)
    return engine, ids


def percentile(values: list[float], fraction: float) -> float:
    """PostgreSQL's percentile_cont: linear between the closest ranks."""
    ordered = sorted(values)
    rank = (len(ordered) - 1) * fraction
    low = int(rank)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def test_phase_figures_failures_and_days(filled: tuple[sa.Engine, dict[str, str]]) -> None:
    engine, _ = filled
    report = analytics.stats(engine, timedelta(days=7))
    by_phase = {s.phase: s for s in report.phases}
    assert list(by_phase) == [
        P.QUEUED,
        P.PULLING_SOURCE,
        P.BUILDING,
        P.COPYING_FILES,
        P.CREATING_SYMLINKS,
        P.UPDATING_ROUTES,
        P.HEALTH_CHECK,
    ]

    building = by_phase[P.BUILDING]
    durations = [10.0, 20.0, 30.0, 4.0, 8.0]  # a, b, c (failed), d, e; f still runs
    assert building.count == len(durations)
    # Within the rollup's half bucket (slipway.rollups).
    assert building.p50_seconds == pytest.approx(percentile(durations, 0.5), rel=BUCKET)
    assert building.p95_seconds == pytest.approx(percentile(durations, 0.95), rel=BUCKET)
    assert building.max_seconds == pytest.approx(30.0)
    assert (building.failures, building.cancellations) == (1, 0)

    copying = by_phase[P.COPYING_FILES]  # e's skipped copy does not count
    assert copying.count == 3 and copying.max_seconds == pytest.approx(5.0)
    assert (copying.failures, copying.cancellations) == (0, 1)
    assert by_phase[P.HEALTH_CHECK].count == 3
    assert by_phase[P.QUEUED].p50_seconds == pytest.approx(1.0, rel=BUCKET)

    assert [(f.phase, f.failures, f.share) for f in report.failing] == [(P.BUILDING, 1, 1.0)]
    assert report.failing[0].failure_rate == pytest.approx(1 / 5)

    days = [(d.day, d.deployments, d.active, d.failed, d.cancelled) for d in report.days]
    assert days == [(DAY1.date(), 2, 2, 0, 0), (DAY2.date(), 4, 1, 1, 1)]
    assert [d.success_rate for d in report.days] == [1.0, 0.5]

    # A window that starts after day 1 leaves its deployments out.
    later = analytics.stats(engine, datetime.now(UTC) - DAY2 + timedelta(minutes=1))
    assert [d.day for d in later.days] == [DAY2.date()]
    assert {s.phase: s.count for s in later.phases}[P.BUILDING] == 3
    assert analytics.stats(engine, timedelta(days=10**6)).days == report.days


def test_timeline_and_eta(filled: tuple[sa.Engine, dict[str, str]]) -> None:
    engine, ids = filled
    spans = analytics.timeline(engine, ids["a"])
    assert [s.phase for s in spans] == FULL + SWITCH
    assert [s.duration_seconds for s in spans] == [2, 3, 10, 1, 1, 1, 2, None]
    assert spans[0].started_at == DAY1 and spans[-1].ended_at is None
    skipped = analytics.timeline(engine, ids["e"])
    assert [s.phase for s in skipped if s.skipped] == [P.COPYING_FILES]
    failed = analytics.timeline(engine, ids["c"])
    assert failed[-1].phase is P.FAILED and failed[-1].ended_at is None
    assert failed[-2].duration_seconds == 30

    typical = analytics.medians(analytics.stats(engine, timedelta(days=7)).phases)
    running = queries.get_deployment(engine, ids["f"])
    assert running is not None
    now = running.phase_updated_at + timedelta(seconds=3)
    eta = analytics.eta(running, typical, now)
    ahead = [P.COPYING_FILES, P.CREATING_SYMLINKS, P.UPDATING_ROUTES, P.HEALTH_CHECK]
    expected = typical[P.BUILDING] - 3 + sum(typical[p] for p in ahead)
    assert eta is not None
    assert eta.remaining_seconds == pytest.approx(expected, abs=0.1)
    assert eta.expected_at == now + timedelta(seconds=eta.remaining_seconds)

    # Past the median the current phase adds nothing; an app skips copying and linking.
    late = analytics.eta(running, typical, now + timedelta(hours=1))
    assert late is not None
    assert late.remaining_seconds == pytest.approx(sum(typical[p] for p in ahead), abs=0.1)
    app = running.model_copy(update={"metadata": {"deploymentType": "container"}})
    as_app = analytics.eta(app, typical, now + timedelta(hours=1))
    assert as_app is not None
    assert as_app.remaining_seconds == pytest.approx(
        typical[P.UPDATING_ROUTES] + typical[P.HEALTH_CHECK], abs=0.1
    )
    rollback = running.model_copy(update={"phase": P.QUEUED, "metadata": {"mode": "rollback"}})
    assert analytics.eta(rollback, typical, now) is not None

    ended = queries.get_deployment(engine, ids["a"])
    assert ended is not None and analytics.eta(ended, typical, now) is None
    assert analytics.eta(running, {}, now) is None


async def test_stats_command(filled: tuple[sa.Engine, dict[str, str]], settings: Settings) -> None:
    engine, _ = filled
    own = settings.model_copy(update={"database_url": engine.url.render_as_string(False)})
    code, out, err = await slipway(own, "stats", "--since", "7d")
    assert code == 0, err
    for text in ("Phases since", "building", "Per day (UTC)", "50%", "Where deployments fail"):
        assert text in out
    code, out, err = await slipway(own, "stats", "--json")
    assert code == 0, err
    document = json.loads(out)
    assert set(document) == {"since", "phases", "days", "failing"}
    assert {"phase", "count", "p50Seconds", "p95Seconds", "maxSeconds", "failures"} <= set(
        document["phases"][0]
    )
    code, _, err = await slipway(own, "stats", "--since", "a while")
    assert code == 2 and "invalid duration" in err


async def test_a_real_deployments_timeline_follows_its_transitions(
    client: Client,
    settings: Settings,
    engine: sa.Engine,
    worker: RunningWorker,
    project: str,
    tmp_path: Path,
) -> None:
    deployment_id, failure = await deploy_and_wait(
        client, settings, make_site(tmp_path / "s", "timed"), project
    )
    assert failure is None
    spans = analytics.timeline(engine, deployment_id)
    assert [s.phase for s in spans] == FULL + SWITCH
    for span, following in itertools.pairwise(spans):
        assert span.ended_at == following.started_at
        assert span.duration_seconds is not None and span.duration_seconds >= 0
    report = analytics.stats(engine, timedelta(hours=1))
    assert {P.BUILDING, P.HEALTH_CHECK} <= {s.phase for s in report.phases}


def _rollups(conn: sa.Connection) -> tuple[set[tuple[object, ...]], set[tuple[object, ...]]]:
    runs = {tuple(row) for row in conn.execute(sa.select(phase_rollup))}
    days = {tuple(row) for row in conn.execute(sa.select(deployment_days)) if row.deployments}
    return runs, days


def test_the_rollups_each_transition_keeps_match_a_refill_from_the_log(own_database: str) -> None:
    """Transitions recorded as the workers record them keep the same rollups as a rebuild
    from the transition log: runs ended by the next phase, by a failure and by a cancel,
    skipped runs left out, a resumed round, a superseded deployment."""
    engine = engine_for(own_database)
    ids = [str(uuid.uuid4()) for _ in range(5)]
    for deployment_id in ids:
        d = DeploymentInput(deployment_id=deployment_id, project="rolled")
        records.register(engine, d, "rolled.localhost", PhaseMetadata())
    ok, failed, cancelled, resumed, superseded = ids
    for phase in (*FULL[1:], *SWITCH):
        records.record_transition(engine, ok, phase, PhaseMetadata())
    records.record_transition(engine, failed, P.PULLING_SOURCE, PhaseMetadata())
    records.record_transition(engine, failed, P.BUILDING, PhaseMetadata())
    records.record_transition(engine, failed, P.COPYING_FILES, PhaseMetadata(skipped=True))
    records.record_transition(engine, failed, P.CREATING_SYMLINKS, PhaseMetadata())
    records.record_transition(engine, failed, P.FAILED, PhaseMetadata(), level="error")
    records.record_transition(engine, cancelled, P.PULLING_SOURCE, PhaseMetadata())
    records.record_transition(
        engine, cancelled, P.FAILED, PhaseMetadata(), status=Status.CANCELLED, level="warning"
    )
    records.record_transition(engine, resumed, P.PULLING_SOURCE, PhaseMetadata())
    records.record_transition(engine, resumed, P.FAILED, PhaseMetadata(), level="error")
    for phase in SWITCH:
        records.record_transition(engine, resumed, phase, PhaseMetadata(), round=1)
    records.supersede(engine, superseded, ok)

    with engine.connect() as conn:
        kept = _rollups(conn)
    with engine.connect() as conn:
        rollups.refill(conn)
        rebuilt = _rollups(conn)
        conn.rollback()
    assert kept == rebuilt
    days = {status: count for _, status, count in kept[1]}
    assert days == {"active": 2, "failed": 1, "cancelled": 1, "superseded": 1}
    report = analytics.stats(engine, timedelta(hours=1))
    assert {
        s.phase: (s.failures, s.cancellations)
        for s in report.phases
        if s.failures or s.cancellations
    } == {
        P.CREATING_SYMLINKS: (1, 0),
        P.PULLING_SOURCE: (1, 1),
    }
