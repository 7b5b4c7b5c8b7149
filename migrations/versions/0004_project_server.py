"""Projects are pinned to the deployment server that hosts them.

Revision ID: 0004
Revises: 0003
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Add projects.server: the server whose worker runs the project's host-bound work."""
    op.add_column("projects", sa.Column("server", sa.String(63), nullable=True))


def downgrade() -> None:
    """Drop the column."""
    op.drop_column("projects", "server")
