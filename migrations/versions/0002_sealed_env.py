"""Deployments keep their environment, sealed, so a resume or a rollback can use it again.

Revision ID: 0002
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Add deployments.sealed_env: names in clear, values encrypted."""
    op.add_column(
        "deployments",
        sa.Column("sealed_env", JSONB, nullable=False, server_default=sa.text("'{}'::jsonb")),
    )


def downgrade() -> None:
    """Drop the column."""
    op.drop_column("deployments", "sealed_env")
