"""Whose turn a project is in: the deployment its API started directly, or its serializer.

Revision ID: 0012
Revises: 0011
"""

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Add projects.turn and projects.turn_since."""
    op.add_column("projects", sa.Column("turn", sa.String(63), nullable=True))
    op.add_column("projects", sa.Column("turn_since", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    """Drop them: every deployment then goes through its project's serializer."""
    op.drop_column("projects", "turn_since")
    op.drop_column("projects", "turn")
