"""Preview deployments: a preview is tracked as a project of its own (`<name>--<project>`)
that names the project it previews, until it is removed (its branch deleted, or expired).

Revision ID: 0009
Revises: 0007
"""

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Add projects.preview_of and projects.removed_at."""
    op.add_column(
        "projects",
        sa.Column("preview_of", sa.BigInteger, sa.ForeignKey("projects.id"), nullable=True),
    )
    op.add_column("projects", sa.Column("removed_at", sa.DateTime(timezone=True), nullable=True))
    op.create_index("idx_projects_preview_of", "projects", ["preview_of"])


def downgrade() -> None:
    """Drop both columns."""
    op.drop_index("idx_projects_preview_of", "projects")
    op.drop_column("projects", "removed_at")
    op.drop_column("projects", "preview_of")
