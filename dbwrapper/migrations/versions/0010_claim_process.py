"""A database being made names the process making it, so that another process can tell
when that one died and settle what it left half-made, without waiting for a lone start.

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-02
"""

import sqlalchemy as sa
from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # SQLite changes a table by copying it: batch mode does that.
    with op.batch_alter_table("managed_databases") as table:
        table.add_column(sa.Column("process", sa.String(32), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("managed_databases") as table:
        table.drop_column("process")
