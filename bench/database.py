"""What Slipway costs PostgreSQL: statements, transactions and WAL per deployment against plain
SQL writing the same rows, and the stuck query and the `slipway stats` report at scale against
plain queries on the same tables."""

import asyncio
import statistics
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import timedelta
from typing import Any

import sqlalchemy as sa

from bench import sites
from bench.report import Figure, Raw, Section
from bench.stack import Stack, in_process_workers
from bench.workflows import finished
from slipway import analytics, rollups
from slipway.database import engine_for, migrate
from slipway.phases import PROGRESS, Phase
from slipway.queries import find_stuck, stuck_query
from slipway.records import transition_message
from slipway.settings import Settings
from slipway.workflow_ids import deployment_workflow_id
from starter import api

SUCCESS = [p for p in Phase if p is not Phase.FAILED]
"""The transitions of a successful deployment, queued to active."""

STUCK_ROWS = 50
"""Deployments stuck for an hour or more, the same few at every size: stuck ones are rare."""

STUCK_AFTER = timedelta(minutes=5)
"""The stuck query's threshold, as `slipway stuck` defaults it."""

REPEATS = 30
"""Runs of each fast query; the median is its figure."""

ANALYTICS_WINDOW = timedelta(days=30)
"""The window of the `slipway stats` report the benchmark times."""


@dataclass
class Counts:
    """Statements by their first keyword, and commits, seen on an engine."""

    statements: Counter[str] = field(default_factory=Counter)
    commits: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)


@contextmanager
def counting() -> Iterator[Counts]:
    """Count every statement and commit of every engine in this process (the API's and the
    workers') while the block runs; activities run on threads, hence the lock."""
    counts = Counts()

    def on_statement(conn: sa.Connection, cursor: object, statement: str, *rest: object) -> None:
        with counts.lock:
            counts.statements[statement.split(None, 1)[0].upper()] += 1

    def on_commit(conn: sa.Connection) -> None:
        with counts.lock:
            counts.commits += 1

    sa.event.listen(sa.Engine, "before_cursor_execute", on_statement)
    sa.event.listen(sa.Engine, "commit", on_commit)
    try:
        yield counts
    finally:
        sa.event.remove(sa.Engine, "before_cursor_execute", on_statement)
        sa.event.remove(sa.Engine, "commit", on_commit)


def _wal(engine: sa.Engine) -> int:
    with engine.connect() as conn:
        return int(conn.execute(sa.text("SELECT pg_current_wal_insert_lsn() - '0/0'")).scalar_one())


def _full_page_writes(engine: sa.Engine, setting: str) -> None:
    """Full-page images depend on when the last checkpoint was, not on what a deployment
    writes; turned off while WAL is measured so two measurements compare."""
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(sa.text(f"ALTER SYSTEM SET full_page_writes = {setting}"))
        conn.execute(sa.text("SELECT pg_reload_conf()"))
    time.sleep(1.0)


@dataclass(frozen=True)
class Cost:
    """What writing one deployment's rows cost the database."""

    statements: dict[str, int]
    commits: int
    wal_bytes: int
    phase_metadata: str = ""
    deployment_row_bytes: int = 0
    log_rows: int = 0
    log_row_bytes: int = 0

    @property
    def total(self) -> int:
        return sum(self.statements.values())

    @property
    def writes(self) -> int:
        return sum(n for kind, n in self.statements.items() if kind in ("INSERT", "UPDATE"))


async def _deploy(stack: Stack, settings: Settings, project: str, text: str) -> Cost:
    """One deployment with its statements, commits and WAL counted; nothing else writes."""
    site = sites.one_file(stack.root / "database" / text, text)
    engine = stack.engine
    before = _wal(engine)
    with counting() as counts:
        deployment_id = await api.start_deployment(stack.client, settings, site, project)
        _, failure = await finished(stack.client, deployment_workflow_id(deployment_id))
    if failure:
        raise RuntimeError(f"deployment of {project} failed: {failure}")
    wal = _wal(engine) - before
    with engine.connect() as conn:
        sizes = conn.execute(
            sa.text(
                "SELECT d.phase_metadata::text, pg_column_size(d.*),"
                " (SELECT count(*) FROM deployment_logs l WHERE l.deployment_id = d.id),"
                " (SELECT sum(pg_column_size(l.*)) FROM deployment_logs l"
                "  WHERE l.deployment_id = d.id)"
                " FROM deployments d WHERE d.id = :id"
            ),
            {"id": deployment_id},
        ).one()
    return Cost(
        dict(counts.statements),
        counts.commits,
        wal,
        phase_metadata=str(sizes[0]),
        deployment_row_bytes=int(sizes[1]),
        log_rows=int(sizes[2]),
        log_row_bytes=int(sizes[3]),
    )


def _plain(engine: sa.Engine, project: str) -> Cost:
    """The floor: the same rows — a deployment and one log row per transition, the row moved
    at each — written by plain SQL, one transaction per transition, with no metadata."""
    deployment_id = str(uuid.uuid4())
    create = sa.text(
        "INSERT INTO deployments (id, project_id, workflow_id)"
        " SELECT :id, id, :workflow FROM projects WHERE name = :project"
    )
    move = sa.text("UPDATE deployments SET phase = :phase, phase_updated_at = now() WHERE id = :id")
    log = sa.text(
        "INSERT INTO deployment_logs (deployment_id, phase, message) VALUES (:id, :phase, :msg)"
    )
    before = _wal(engine)
    with counting() as counts:
        for phase in SUCCESS:
            values = {"id": deployment_id, "phase": phase.value}
            with engine.begin() as conn:
                if phase is Phase.QUEUED:
                    conn.execute(
                        create,
                        {**values, "workflow": f"deploy-{deployment_id}", "project": project},
                    )
                else:
                    conn.execute(move, values)
                conn.execute(log, {**values, "msg": transition_message(phase, PROGRESS[phase])})
    return Cost(dict(counts.statements), counts.commits, _wal(engine) - before)


async def per_deployment(stack: Stack) -> tuple[list[Figure], Cost, Raw]:
    """A new project's deployment, then a redeploy of it, then the plain-SQL floor; the
    redeploy is the figure, as most deployments are redeploys."""
    settings = stack.on_queue("bench-database")
    project = f"db-{uuid.uuid4().hex[:8]}"
    await asyncio.to_thread(_full_page_writes, stack.engine, "off")
    try:
        async with in_process_workers(stack, settings):
            new = await _deploy(stack, settings, project, "first")
            redeploy = await _deploy(stack, settings, project, "second")
        plain = await asyncio.to_thread(_plain, stack.engine, project)
    finally:
        await asyncio.to_thread(_full_page_writes, stack.engine, "on")
    figures = [
        Figure(
            "database",
            "write transactions / redeploy",
            redeploy.commits,
            plain.commits,
            "plain SQL, one per transition",
            "tx",
            at_most=1.0,
        ),
        Figure(
            "database",
            "SQL statements / redeploy",
            redeploy.total,
            plain.total,
            "plain SQL, same rows",
            "stmts",
            note=f"{redeploy.writes} writes, {redeploy.total - redeploy.writes} reads",
        ),
        Figure(
            "database",
            "WAL bytes / redeploy",
            redeploy.wal_bytes,
            plain.wal_bytes,
            "plain SQL, same rows",
            "B",
            note="full_page_writes off while measured",
        ),
        Figure(
            "database",
            "phase_metadata of a static deploy",
            len(redeploy.phase_metadata.encode()),
            1024,
            "1 KB budget",
            "B",
            at_most=1.0,
        ),
    ]
    raw: Raw = {
        "new_project": asdict(new),
        "redeploy": asdict(redeploy),
        "plain_sql": asdict(plain),
    }
    return figures, redeploy, raw


def _plan_nodes(plan: dict[str, Any]) -> list[str]:
    """Every scan in a plan: `<node> using <index>`, or `<node> on <table>` without one."""
    found = []
    if "Index Name" in plan:
        found.append(f"{plan['Node Type']} using {plan['Index Name']}")
    elif "Relation Name" in plan:
        found.append(f"{plan['Node Type']} on {plan['Relation Name']}")
    for child in plan.get("Plans", []):
        found += _plan_nodes(child)
    return found


def _plans(engine: sa.Engine, call: Callable[[], object]) -> list[str]:
    """The scans of every query `call` runs, each explained as it ran."""
    ran: list[tuple[str, Any]] = []

    def on_statement(
        conn: sa.Connection, cursor: object, statement: str, params: Any, *rest: object
    ) -> None:
        ran.append((statement, params))

    sa.event.listen(engine, "before_cursor_execute", on_statement)
    try:
        call()
    finally:
        sa.event.remove(engine, "before_cursor_execute", on_statement)
    scans = []
    with engine.connect() as conn:
        for statement, params in ran:
            explained = conn.exec_driver_sql(f"EXPLAIN (ANALYZE, FORMAT JSON) {statement}", params)
            scans += _plan_nodes(explained.scalar_one()[0]["Plan"])
    return scans


def _median_seconds(call: Callable[[], object], repeats: int) -> float:
    """Median seconds of `call` over `repeats` runs."""
    seconds = []
    for _ in range(repeats):
        began = time.perf_counter()
        call()
        seconds.append(time.perf_counter() - began)
    return statistics.median(seconds)


def _scale_engine(stack: Stack) -> sa.Engine:
    """A database of its own on the same server, so millions of rows touch no other figure."""
    with stack.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(sa.text("CREATE DATABASE bench_scale"))
    assert stack.settings.database_url is not None
    url = stack.settings.database_url.rsplit("/", 1)[0] + "/bench_scale"
    sqlalchemy_url = Settings(database_url=url).sqlalchemy_url
    migrate(sqlalchemy_url)
    return engine_for(sqlalchemy_url)


def _grow(engine: sa.Engine, start: int, stop: int, metadata: str) -> None:
    """Deployments `start`..`stop`-1 over 1,000 projects: 1% in progress and recent (not
    stuck), 9% failed, the rest active, all with a real static deploy's metadata."""
    with engine.begin() as conn:
        conn.execute(
            sa.text(
                """
                INSERT INTO deployments (id, project_id, status, phase, phase_progress,
                    phase_metadata, phase_updated_at, workflow_id, source)
                SELECT id, 1 + i % 1000, status, phase,
                    CASE status WHEN 'deploying' THEN 90 WHEN 'failed' THEN 0 ELSE 100 END,
                    CAST(:meta AS jsonb),
                    CASE WHEN status = 'deploying' THEN now() - (i % 60) * interval '1 second'
                         ELSE now() - i * interval '10 seconds' END,
                    'deploy-' || id, 'upload site'
                FROM (
                    SELECT i, gen_random_uuid() AS id,
                        CASE WHEN i % 100 = 0 THEN 'deploying' WHEN i % 10 = 0 THEN 'failed'
                             ELSE 'active' END AS status,
                        CASE WHEN i % 100 = 0 THEN 'health_check' WHEN i % 10 = 0 THEN 'failed'
                             ELSE 'active' END AS phase
                    FROM generate_series(:start, :stop - 1) AS i
                ) AS generated
                """
            ),
            {"start": start, "stop": stop, "meta": metadata},
        )
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(sa.text("ANALYZE deployments"))


def _seed(engine: sa.Engine) -> None:
    """1,000 projects and the few stuck deployments."""
    with engine.begin() as conn:
        conn.execute(
            sa.text(
                "INSERT INTO projects (name, domain) SELECT 'p' || i, 'p' || i || '.localhost'"
                " FROM generate_series(1, 1000) AS i"
            )
        )
        conn.execute(
            sa.text(
                "INSERT INTO deployments (id, project_id, status, phase, phase_updated_at,"
                " workflow_id) SELECT gen_random_uuid(), i, 'deploying', 'copying_files',"
                " now() - interval '1 hour' - i * interval '1 minute', 'stuck'"
                " FROM generate_series(1, :n) AS i"
            ),
            {"n": STUCK_ROWS},
        )


def _add_logs(engine: sa.Engine, rows: int) -> None:
    """`rows` transition log rows: every transition of rows/8 deployments, each phase taking
    a random few seconds."""
    phases = ", ".join(f"({n}, '{p.value}', {PROGRESS[p]})" for n, p in enumerate(SUCCESS))
    with engine.begin() as conn:
        conn.execute(
            sa.text(
                f"""
                INSERT INTO deployment_logs (deployment_id, timestamp, phase, message, event_key)
                SELECT d.id, d.created_at + (p.n * 3 + random() * 3) * interval '1 second',
                       p.phase, 'Phase transition: ' || p.phase || ' (' || p.progress || '%)',
                       'transition:' || p.phase
                FROM (SELECT id, created_at FROM deployments LIMIT :deployments) AS d
                CROSS JOIN (VALUES {phases}) AS p(n, phase, progress)
                ORDER BY d.id, p.n
                """
            ),
            {"deployments": rows // len(SUCCESS)},
        )
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(sa.text("ANALYZE deployment_logs"))


@dataclass(frozen=True)
class AtSize:
    """The stuck query at one table size, with the plain lookup it is held against."""

    stuck_seconds: float
    stuck_rows: int
    primary_key_seconds: float
    plan: list[str]


def _at_size(engine: sa.Engine, size: int) -> AtSize:
    stuck = stuck_query(STUCK_AFTER)
    lookup = sa.text("SELECT * FROM deployments WHERE id = :id")
    with engine.connect() as conn:
        some_id = conn.execute(
            sa.text("SELECT id FROM deployments OFFSET :n LIMIT 1"), {"n": size // 2}
        ).scalar_one()
        return AtSize(
            stuck_seconds=_median_seconds(lambda: conn.execute(stuck).all(), REPEATS),
            stuck_rows=len(conn.execute(stuck).all()),
            primary_key_seconds=_median_seconds(
                lambda: conn.execute(lookup, {"id": some_id}).all(), REPEATS
            ),
            plan=_plans(engine, lambda: find_stuck(engine, STUCK_AFTER)),
        )


def at_scale(
    stack: Stack, sizes: tuple[int, ...], log_rows: int, metadata: str
) -> tuple[list[Figure], Raw]:
    """The stuck query at each size against a primary-key lookup, its growth from the
    smallest size to the largest, and the `slipway stats` report (phase durations from the
    transition log, deployments per day) against `count(*)` of the log."""
    engine = _scale_engine(stack)
    _seed(engine)
    by_size: dict[int, AtSize] = {}
    grown = STUCK_ROWS
    for size in sizes:
        _grow(engine, grown, size, metadata)
        grown = size
        by_size[size] = _at_size(engine, size)
    _add_logs(engine, log_rows)
    with engine.begin() as conn:
        # Rows written here by hand, not through the transitions: fill the rollups they
        # would have kept, as the migration does for a database that has history.
        rollups.refill(conn)
    report = _median_seconds(lambda: analytics.stats(engine, ANALYTICS_WINDOW), 3)
    with engine.connect() as conn:
        count = _median_seconds(
            lambda: conn.execute(sa.text("SELECT count(*) FROM deployment_logs")).all(), 3
        )
    report_plan = _plans(engine, lambda: analytics.stats(engine, ANALYTICS_WINDOW))
    engine.dispose()
    smallest, largest = by_size[sizes[0]], by_size[sizes[-1]]
    figures = [
        Figure(
            "database",
            f"stuck query, {sizes[-1]:,} deployments",
            largest.stuck_seconds,
            largest.primary_key_seconds,
            "primary-key lookup",
            "s",
            note="; ".join(largest.plan),
        ),
        Figure(
            "database",
            f"stuck query growth, {sizes[0]:,} → {sizes[-1]:,}",
            largest.stuck_seconds,
            smallest.stuck_seconds,
            f"same query at {sizes[0]:,}",
            "s",
            at_most=2.0,
        ),
        Figure(
            "database",
            f"`slipway stats` report, {log_rows:,} log rows",
            report,
            count,
            "SELECT count(*)",
            "s",
            at_most=3.0,
            note="; ".join(report_plan),
        ),
    ]
    raw: Raw = {
        "stuck_by_size": {size: asdict(found) for size, found in by_size.items()},
        "stats_report_seconds": report,
        "count_seconds": count,
        "stats_report_plan": report_plan,
    }
    return figures, raw


async def measure(stack: Stack, sizes: tuple[int, ...], log_rows: int) -> Section:
    """Per-deployment cost first, on a quiet database, then the queries at scale, whose
    deployments carry the measured redeploy's metadata."""
    figures, redeploy, raw = await per_deployment(stack)
    scaled, scale_raw = await asyncio.to_thread(
        at_scale, stack, sizes, log_rows, redeploy.phase_metadata
    )
    return Section("database", figures + scaled, {**raw, **scale_raw})
