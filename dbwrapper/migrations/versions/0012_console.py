"""The SQL console's statements: each database's last runs, to show again and run again, and
the server session of a run at work, so that any process can cancel it.

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-02
"""

import sqlalchemy as sa
from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "console_runs",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("database_id", sa.Integer, sa.ForeignKey("managed_databases.id", ondelete="CASCADE"),
                  nullable=False, index=True),
        sa.Column("actor", sa.String(64), nullable=False),
        sa.Column("sql", sa.Text, nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("summary", sa.String(255), nullable=False),
        sa.Column("session_id", sa.BigInteger, nullable=True),
        sa.Column("process", sa.String(32), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("console_runs")
