"""Databases' sizes are read from their servers when listed; the registry's copy of the last
one seen was written and never read.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-01
"""

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # SQLite drops a column by copying the table: batch mode does that.
    with op.batch_alter_table("managed_databases") as table:
        table.drop_column("size_seen_at")
        table.drop_column("size_bytes")


def downgrade() -> None:
    with op.batch_alter_table("managed_databases") as table:
        table.add_column(sa.Column("size_bytes", sa.BigInteger, nullable=True))
        table.add_column(sa.Column("size_seen_at", sa.DateTime(timezone=True), nullable=True))
