"""Read-only mode: each database's reader (a login that can only read it), and whether an
instructor switched the mode on for the database or for its course.

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-02
"""

import sqlalchemy as sa
from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "readers",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("database_id", sa.Integer, sa.ForeignKey("managed_databases.id", ondelete="CASCADE"),
                  nullable=False, unique=True),
        sa.Column("login", sa.String(64), nullable=False, unique=True),
        sa.Column("password", sa.String(255), nullable=False),
        sa.Column("read_only", sa.Boolean, nullable=False),
    )
    with op.batch_alter_table("courses") as table:
        table.add_column(sa.Column("read_only", sa.Boolean, nullable=False, server_default=sa.false()))


def downgrade() -> None:
    with op.batch_alter_table("courses") as table:
        table.drop_column("read_only")
    op.drop_table("readers")
