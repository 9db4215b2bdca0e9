"""Courses: a name and the SQL each engine's databases start with; databases remember theirs.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-26
"""

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "courses",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("name", sa.String(32), nullable=False, unique=True),
        sa.Column("description", sa.String(200), nullable=False),
        sa.Column("postgres_sql", sa.Text, nullable=True),
        sa.Column("mysql_sql", sa.Text, nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.add_column("managed_databases", sa.Column("course", sa.String(32), nullable=True))


def downgrade() -> None:
    op.drop_column("managed_databases", "course")
    op.drop_table("courses")
