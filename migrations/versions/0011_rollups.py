"""The analytics rollups: finished phase runs by hour, phase and duration bucket, and
deployments by creation day and status, filled from the transition log already there.

Revision ID: 0011
Revises: 0007
"""

import sqlalchemy as sa
from alembic import op

from slipway import rollups

revision = "0011"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Create phase_rollup and deployment_days, then fill them from the rows there are."""
    op.create_table(
        "phase_rollup",
        sa.Column("hour", sa.DateTime(timezone=True), primary_key=True),
        sa.Column("phase", sa.String(50), primary_key=True),
        sa.Column("bucket", sa.SmallInteger, primary_key=True),
        sa.Column("runs", sa.Integer, nullable=False),
        sa.Column("failures", sa.Integer, nullable=False),
        sa.Column("cancellations", sa.Integer, nullable=False),
        sa.Column("max_seconds", sa.Float, nullable=False),
    )
    op.create_table(
        "deployment_days",
        sa.Column("day", sa.Date, primary_key=True),
        sa.Column("status", sa.String(20), primary_key=True),
        sa.Column("deployments", sa.Integer, nullable=False),
    )
    rollups.refill(op.get_bind())


def downgrade() -> None:
    """Drop the rollups; the transition log they came from stays."""
    op.drop_table("deployment_days")
    op.drop_table("phase_rollup")
