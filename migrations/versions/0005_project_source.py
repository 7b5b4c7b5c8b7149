"""Projects remember where their source comes from: a git repository and branch, with its
credentials and webhook secret sealed.

Revision ID: 0005
Revises: 0004
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Add projects.source: the repository in clear, every secret sealed."""
    op.add_column(
        "projects",
        sa.Column("source", JSONB, nullable=False, server_default=sa.text("'{}'::jsonb")),
    )


def downgrade() -> None:
    """Drop the column."""
    op.drop_column("projects", "source")
