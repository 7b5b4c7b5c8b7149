"""The seed's stuck-deployment query: what it finds, and that the index serves it."""

import uuid
from datetime import timedelta

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql

from slipway import queries
from slipway.tables import deployments, projects

ROWS = 120_000


def _plan(conn: sa.Connection, query: sa.Select[object]) -> str:
    compiled = query.compile(
        dialect=postgresql.dialect(),  # type: ignore[no-untyped-call]
        compile_kwargs={"render_postcompile": True},
    )
    lines = conn.exec_driver_sql("EXPLAIN " + str(compiled), compiled.params).scalars()
    return "\n".join(lines)


def test_stuck_query_finds_old_in_progress_rows_through_the_index(engine: sa.Engine) -> None:
    name = f"stuck-{uuid.uuid4().hex[:8]}"
    with engine.connect() as conn, conn.begin() as tx:
        project_id = conn.execute(
            sa.insert(projects)
            .values(name=name, domain=f"{name}.localhost")
            .returning(projects.c.id)
        ).scalar_one()
        conn.execute(
            sa.text(
                """
                INSERT INTO deployments (id, project_id, status, phase, workflow_id,
                                         phase_updated_at)
                SELECT gen_random_uuid(), :project,
                       CASE WHEN n % 50 = 0 THEN 'failed' ELSE 'active' END,
                       CASE WHEN n % 50 = 0 THEN 'failed' ELSE 'active' END,
                       'deploy-' || n, now() - (n || ' seconds')::interval
                FROM generate_series(1, :rows) AS n
                """
            ),
            {"project": project_id, "rows": ROWS},
        )
        planted = {
            "old-building": ("building", "pulling_source", timedelta(hours=2)),
            "old-deploying": ("deploying", "copying_files", timedelta(minutes=30)),
            "fresh-deploying": ("deploying", "health_check", timedelta(seconds=10)),
            "old-queued": ("queued", "queued", timedelta(hours=3)),
        }
        ids = {}
        for label, (status, phase, age) in planted.items():
            ids[label] = str(uuid.uuid4())
            conn.execute(
                sa.insert(deployments).values(
                    id=ids[label],
                    project_id=project_id,
                    status=status,
                    phase=phase,
                    workflow_id=label,
                    phase_updated_at=sa.func.now() - age,
                )
            )
        conn.execute(sa.text("ANALYZE deployments"))

        query = queries.stuck_query(timedelta(minutes=5))
        found = {row.id for row in conn.execute(query)} & set(ids.values())
        assert found == {ids["old-building"], ids["old-deploying"]}
        plan = _plan(conn, query)
        assert "idx_deployments_stuck" in plan, plan
        assert "Seq Scan on deployments" not in plan, plan
        tx.rollback()
