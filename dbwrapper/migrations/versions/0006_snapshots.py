"""Snapshots: copies of a database at one moment, kept on its server to revert to; and
databases recorded before they are made (``ready``), so that a crash leaves a trace.

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-27
"""

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "snapshots",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("database_id", sa.Integer, sa.ForeignKey("managed_databases.id"), nullable=False, index=True),
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("label", sa.String(80), nullable=False),
        sa.Column("taken_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("size_bytes", sa.BigInteger, nullable=True),
        sa.Column("state", sa.String(16), nullable=False),
    )
    op.add_column(
        "managed_databases", sa.Column("ready", sa.Boolean, nullable=False, server_default=sa.true())
    )


def downgrade() -> None:
    op.drop_column("managed_databases", "ready")
    op.drop_table("snapshots")
