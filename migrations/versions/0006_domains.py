"""Custom domains, each claimed by one project, with its certificate's state; and each
project's history of events (a domain added or removed, a certificate issued or refused).

Revision ID: 0006
Revises: 0005
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    """Create domains (a name is unique: one project claims it) and project_events."""
    op.create_table(
        "domains",
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
    )
    op.create_index("idx_domains_project", "domains", ["project_id"])
    op.create_table(
        "project_events",
        sa.Column("id", sa.BigInteger, sa.Identity(), primary_key=True),
        sa.Column("project_id", sa.BigInteger, sa.ForeignKey("projects.id"), nullable=False),
        sa.Column("kind", sa.String(40), nullable=False),
        sa.Column("message", sa.Text, nullable=False),
        sa.Column("metadata", JSONB, nullable=False, server_default=sa.text("'{}'::jsonb")),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
        ),
    )
    op.create_index("idx_project_events_project", "project_events", ["project_id", "id"])


def downgrade() -> None:
    """Drop both tables."""
    op.drop_table("project_events")
    op.drop_table("domains")
