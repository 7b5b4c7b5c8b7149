"""Analytics kept where they are born: each phase transition adds the run it ends to an hourly
duration histogram, and each status change moves its deployment between the counts of the
day it was created, in the transition's own transaction. The `slipway stats` report then
reads a few hundred rows instead of every transition of the window.

A duration is kept as its bucket on a logarithmic scale (each bucket RATIO times as wide as
the one before, from BASE seconds), so a percentile read back is within half a bucket,
about 2.5%, of the exact one; the maximum is kept exactly. `refill` rebuilds both from the
transition log (the migration's backfill, and a repair after rows were written by hand).
"""

import math

import sqlalchemy as sa

from slipway.phases import WORK_PHASES, Phase

BASE = 0.001
"""Seconds: runs shorter than this share bucket 0."""

RATIO = 1.05
"""How much wider each bucket is than the one before."""

TIMED_PHASES: tuple[Phase, ...] = (Phase.QUEUED, *WORK_PHASES)
"""The phases that last: active and failed end a deployment (until it is resumed)."""

TRANSITION_PREFIX = "Phase transition: "
"""What every transition row's message starts with (`records.transition_message`)."""


def seconds_of(bucket: int) -> float:
    """A bucket's representative duration: the geometric middle of its range."""
    return 0.0 if bucket <= 0 else BASE * RATIO ** (bucket + 0.5)


_ADD_RUN = sa.text(
    """
    INSERT INTO phase_rollup AS r (hour, phase, bucket, runs, failures, cancellations,
        max_seconds)
    SELECT date_trunc('hour', started, 'UTC'), :phase, CASE WHEN secs <= :base THEN 0
             ELSE LEAST(floor(ln(secs / :base) / ln(:ratio)), 32767)::smallint END, 1,
        :failure, :cancellation, secs
    FROM (SELECT phase_updated_at AS started,
                 GREATEST(extract(epoch FROM now() - phase_updated_at)::float8, 0) AS secs
          FROM deployments WHERE id = :id) AS ended
    ON CONFLICT (hour, phase, bucket) DO UPDATE SET
        runs = r.runs + 1,
        failures = r.failures + EXCLUDED.failures,
        cancellations = r.cancellations + EXCLUDED.cancellations,
        max_seconds = GREATEST(r.max_seconds, EXCLUDED.max_seconds)
    """
)


def add_run(
    conn: sa.Connection, deployment_id: str, phase: Phase, *, failed: bool, cancelled: bool
) -> None:
    """Count the run of `phase` that a transition is ending now, from the deployment row as
    it stands before the transition moves it (its phase began at `phase_updated_at`)."""
    conn.execute(
        _ADD_RUN,
        {
            "id": deployment_id,
            "phase": phase.value,
            "failure": int(failed),
            "cancellation": int(cancelled),
            "base": BASE,
            "ratio": RATIO,
        },
    )


_MOVE = sa.text(
    """
    INSERT INTO deployment_days AS d (day, status, deployments)
    SELECT (timezone('UTC', created_at))::date, moved.status, moved.delta
    FROM deployments,
         (SELECT * FROM unnest(CAST(:statuses AS text[]), CAST(:deltas AS int[]))
                 AS m(status, delta) ORDER BY status) AS moved
    WHERE deployments.id = :id
    ON CONFLICT (day, status) DO UPDATE SET deployments = d.deployments + EXCLUDED.deployments
    """
)


def move_day(conn: sa.Connection, deployment_id: str, before: str | None, after: str) -> None:
    """Move a deployment from one status's count of its creation day to another's (`before`
    None: it is new). Rows are changed in the order of their status, so two transactions
    never wait on each other in a cycle."""
    if before == after:
        return
    changes = {after: 1} | ({before: -1} if before is not None else {})
    conn.execute(
        _MOVE,
        {"id": deployment_id, "statuses": list(changes), "deltas": list(changes.values())},
    )


_REFILL_RUNS = sa.text(
    """
    INSERT INTO phase_rollup (hour, phase, bucket, runs, failures, cancellations, max_seconds)
    SELECT date_trunc('hour', started_at, 'UTC'), phase, CASE WHEN secs <= :base THEN 0
             ELSE LEAST(floor(ln(secs / :base) / ln(:ratio)), 32767)::smallint END, count(*),
           count(*) FILTER (WHERE next_phase = 'failed' AND next_level = 'error'),
           count(*) FILTER (WHERE next_phase = 'failed' AND next_level <> 'error'),
           max(secs)
    FROM (
        SELECT phase, started_at, next_phase, next_level, skipped,
               GREATEST(extract(epoch FROM ended_at - started_at)::float8, 0) AS secs
        FROM (
            SELECT phase, timestamp AS started_at, (metadata -> 'skipped') IS NOT NULL AS skipped,
                   lead(timestamp) OVER w AS ended_at, lead(phase) OVER w AS next_phase,
                   lead(level) OVER w AS next_level
            FROM deployment_logs
            WHERE starts_with(message, :prefix)
            WINDOW w AS (PARTITION BY deployment_id ORDER BY id)
        ) AS runs
        WHERE ended_at IS NOT NULL AND NOT skipped AND phase = ANY(CAST(:timed AS text[]))
    ) AS finished
    GROUP BY 1, 2, 3
    """
)

_REFILL_DAYS = sa.text(
    """
    INSERT INTO deployment_days (day, status, deployments)
    SELECT (timezone('UTC', created_at))::date, status, count(*)
    FROM deployments GROUP BY 1, 2
    """
)


def refill(conn: sa.Connection) -> None:
    """Rebuild both rollups from the transition log and the deployments, as if every
    transition had been recorded through `slipway.records`."""
    conn.execute(sa.text("DELETE FROM phase_rollup"))
    conn.execute(sa.text("DELETE FROM deployment_days"))
    conn.execute(
        _REFILL_RUNS,
        {
            "prefix": TRANSITION_PREFIX,
            "timed": [p.value for p in TIMED_PHASES],
            "base": BASE,
            "ratio": RATIO,
        },
    )
    conn.execute(_REFILL_DAYS)


def percentile(buckets: list[tuple[int, int]], fraction: float, longest: float) -> float:
    """The `fraction` percentile of a histogram (bucket, runs) sorted by bucket, between the
    two closest ranks as PostgreSQL's percentile_cont does, never above the longest run."""
    total = sum(runs for _, runs in buckets)
    rank = (total - 1) * fraction
    low, high = math.floor(rank), math.ceil(rank)

    def at(index: int) -> float:
        seen = 0
        for bucket, runs in buckets:
            seen += runs
            if index < seen:
                return min(seconds_of(bucket), longest)
        return longest

    return at(low) + (at(high) - at(low)) * (rank - low)
