"""Projects, deployments with their phase, and the deployment log.

Revision ID: 0001
Revises:
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB, UUID

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

_EMPTY = sa.text("'{}'::jsonb")


def upgrade() -> None:
    """Create the three tables and the index the stuck-deployment query runs on."""
    op.create_table(
        "projects",
        sa.Column("id", sa.BigInteger, sa.Identity(), primary_key=True),
        sa.Column("name", sa.String(63), nullable=False, unique=True),
        sa.Column("domain", sa.String(255), nullable=False),
        sa.Column("metadata", JSONB, nullable=False, server_default=_EMPTY),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
        ),
    )
    op.create_table(
        "deployments",
        sa.Column("id", UUID(as_uuid=False), primary_key=True),
        sa.Column("project_id", sa.BigInteger, sa.ForeignKey("projects.id"), nullable=False),
        sa.Column("status", sa.String(20), nullable=False, server_default="queued"),
        sa.Column("phase", sa.String(50), nullable=False, server_default="queued"),
        sa.Column("phase_progress", sa.Integer, nullable=False, server_default="0"),
        sa.Column("phase_metadata", JSONB, nullable=False, server_default=_EMPTY),
        sa.Column(
            "phase_updated_at",
            sa.DateTime(timezone=True),
            nullable=False,
            server_default=sa.func.now(),
        ),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
        ),
        sa.Column(
            "updated_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
        ),
        sa.Column("workflow_id", sa.String(255), nullable=False),
        sa.Column("source", sa.Text, nullable=False, server_default=""),
    )
    op.create_index("idx_deployments_stuck", "deployments", ["status", "phase_updated_at"])
    op.create_index("idx_deployments_project", "deployments", ["project_id", "created_at"])
    op.create_table(
        "deployment_logs",
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
        sa.Column("metadata", JSONB, nullable=False, server_default=_EMPTY),
        sa.Column("event_key", sa.String(120), nullable=True),
    )
    op.create_index("idx_deployment_logs_deployment", "deployment_logs", ["deployment_id", "id"])
    op.create_index(
        "uq_deployment_logs_event",
        "deployment_logs",
        ["deployment_id", "event_key"],
        unique=True,
        postgresql_where=sa.text("event_key IS NOT NULL"),
    )


def downgrade() -> None:
    """Drop everything the upgrade created."""
    op.drop_table("deployment_logs")
    op.drop_table("deployments")
    op.drop_table("projects")
