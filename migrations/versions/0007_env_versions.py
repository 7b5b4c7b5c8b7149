"""Each project's environment as immutable versions: names in clear, values sealed; a
deployment names the version it ran with in its metadata.

Revision ID: 0007
Revises: 0006
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Create env_versions: one row per version of a project's environment, never updated."""
    op.create_table(
        "env_versions",
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


def downgrade() -> None:
    """Drop the table."""
    op.drop_table("env_versions")
