"""The PostgreSQL schema as SQLAlchemy Core tables; Alembic migrations create it."""

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB, UUID

metadata = sa.MetaData()

projects = sa.Table(
    "projects",
    metadata,
    sa.Column("id", sa.BigInteger, sa.Identity(), primary_key=True),
    sa.Column("name", sa.String(63), nullable=False, unique=True),
    sa.Column("domain", sa.String(255), nullable=False),
    sa.Column("metadata", JSONB, nullable=False, server_default=sa.text("'{}'::jsonb")),
    sa.Column(
        "created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
    ),
    sa.Column("server", sa.String(63), nullable=True),
    sa.Column("source", JSONB, nullable=False, server_default=sa.text("'{}'::jsonb")),
    sa.Column("preview_of", sa.BigInteger, sa.ForeignKey("projects.id"), nullable=True),
    sa.Column("removed_at", sa.DateTime(timezone=True), nullable=True),
    sa.Column("turn", sa.String(63), nullable=True),
    sa.Column("turn_since", sa.DateTime(timezone=True), nullable=True),
    sa.Index("idx_projects_preview_of", "preview_of"),
)

deployments = sa.Table(
    "deployments",
    metadata,
    sa.Column("id", UUID(as_uuid=False), primary_key=True),
    sa.Column("project_id", sa.BigInteger, sa.ForeignKey("projects.id"), nullable=False),
    sa.Column("status", sa.String(20), nullable=False, server_default="queued"),
    sa.Column("phase", sa.String(50), nullable=False, server_default="queued"),
    sa.Column("phase_progress", sa.Integer, nullable=False, server_default="0"),
    sa.Column("phase_metadata", JSONB, nullable=False, server_default=sa.text("'{}'::jsonb")),
    sa.Column(
        "phase_updated_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
    ),
    sa.Column(
        "created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
    ),
    sa.Column(
        "updated_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
    ),
    sa.Column("workflow_id", sa.String(255), nullable=False),
    sa.Column("source", sa.Text, nullable=False, server_default=""),
    sa.Column("sealed_env", JSONB, nullable=False, server_default=sa.text("'{}'::jsonb")),
    sa.Index("idx_deployments_stuck", "status", "phase_updated_at"),
    sa.Index("idx_deployments_project", "project_id", "created_at"),
)

deployment_logs = sa.Table(
    "deployment_logs",
    metadata,
    sa.Column("id", sa.BigInteger, sa.Identity(), primary_key=True),
    sa.Column(
        "deployment_id",
        UUID(as_uuid=False),
        sa.ForeignKey("deployments.id", ondelete="CASCADE"),
        nullable=False,
    ),
    sa.Column(
        "timestamp", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
    ),
    sa.Column("level", sa.String(10), nullable=False, server_default="info"),
    sa.Column("phase", sa.String(50), nullable=False),
    sa.Column("message", sa.Text, nullable=False),
    sa.Column("metadata", JSONB, nullable=False, server_default=sa.text("'{}'::jsonb")),
    sa.Column("event_key", sa.String(120), nullable=True),
    sa.Index("idx_deployment_logs_deployment", "deployment_id", "id"),
    sa.Index(
        "uq_deployment_logs_event",
        "deployment_id",
        "event_key",
        unique=True,
        postgresql_where=sa.text("event_key IS NOT NULL"),
    ),
)

alerts = sa.Table(
    "alerts",
    metadata,
    sa.Column("id", sa.BigInteger, sa.Identity(), primary_key=True),
    sa.Column("project_id", sa.BigInteger, sa.ForeignKey("projects.id"), nullable=False),
    sa.Column("kind", sa.String(40), nullable=False),
    sa.Column("episode", sa.String(200), nullable=False, unique=True),
    sa.Column("message", sa.Text, nullable=False),
    sa.Column("metadata", JSONB, nullable=False, server_default=sa.text("'{}'::jsonb")),
    sa.Column(
        "created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
    ),
    sa.Column("delivered_at", sa.DateTime(timezone=True), nullable=True),
    sa.Column("resolved_at", sa.DateTime(timezone=True), nullable=True),
    sa.Index("idx_alerts_project", "project_id", "created_at"),
)

domains = sa.Table(
    "domains",
    metadata,
    sa.Column("id", sa.BigInteger, sa.Identity(), primary_key=True),
    sa.Column("name", sa.String(253), nullable=False, unique=True),
    sa.Column("project_id", sa.BigInteger, sa.ForeignKey("projects.id"), nullable=False),
    sa.Column("redirect_www", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column("certificate_source", sa.String(10), nullable=False, server_default="acme"),
    sa.Column("certificate_state", sa.String(10), nullable=False, server_default="pending"),
    sa.Column("certificate_expires_at", sa.DateTime(timezone=True), nullable=True),
    sa.Column("certificate_error", sa.Text, nullable=True),
    sa.Column("failing_since", sa.DateTime(timezone=True), nullable=True),
    sa.Column("own_certificate", sa.Text, nullable=True),
    sa.Column("sealed_key", sa.Text, nullable=True),
    sa.Column(
        "created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
    ),
    sa.Column(
        "claimed_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
    ),
    sa.Index("idx_domains_project", "project_id"),
)

project_events = sa.Table(
    "project_events",
    metadata,
    sa.Column("id", sa.BigInteger, sa.Identity(), primary_key=True),
    sa.Column("project_id", sa.BigInteger, sa.ForeignKey("projects.id"), nullable=False),
    sa.Column("kind", sa.String(40), nullable=False),
    sa.Column("message", sa.Text, nullable=False),
    sa.Column("metadata", JSONB, nullable=False, server_default=sa.text("'{}'::jsonb")),
    sa.Column(
        "created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
    ),
    sa.Index("idx_project_events_project", "project_id", "id"),
)

phase_rollup = sa.Table(
    "phase_rollup",
    metadata,
    sa.Column("hour", sa.DateTime(timezone=True), primary_key=True),
    sa.Column("phase", sa.String(50), primary_key=True),
    sa.Column("bucket", sa.SmallInteger, primary_key=True),
    sa.Column("runs", sa.Integer, nullable=False),
    sa.Column("failures", sa.Integer, nullable=False),
    sa.Column("cancellations", sa.Integer, nullable=False),
    sa.Column("max_seconds", sa.Float, nullable=False),
)
"""Finished phase runs by the hour they began, phase and duration bucket (slipway.rollups)."""

deployment_days = sa.Table(
    "deployment_days",
    metadata,
    sa.Column("day", sa.Date, primary_key=True),
    sa.Column("status", sa.String(20), primary_key=True),
    sa.Column("deployments", sa.Integer, nullable=False),
)
"""Deployments by the UTC day they were created and the status they stand in now."""

env_versions = sa.Table(
    "env_versions",
    metadata,
    sa.Column("id", sa.BigInteger, sa.Identity(), primary_key=True),
    sa.Column("project_id", sa.BigInteger, sa.ForeignKey("projects.id"), nullable=False),
    sa.Column("version", sa.Integer, nullable=False),
    sa.Column("sealed_values", JSONB, nullable=False, server_default=sa.text("'{}'::jsonb")),
    sa.Column("change", JSONB, nullable=False, server_default=sa.text("'{}'::jsonb")),
    sa.Column(
        "created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
    ),
    sa.UniqueConstraint("project_id", "version", name="uq_env_versions_project_version"),
)
