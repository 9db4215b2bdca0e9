"""Course copies: each course's master database per engine, and its warm spares.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-27
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "course_copies",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("backend", sa.String(16), nullable=False),
        sa.Column("course", sa.String(32), nullable=False),
        sa.Column("kind", sa.String(8), nullable=False),
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("password", sa.String(128), nullable=False),
        sa.Column("ready", sa.Boolean, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("backend", "name"),
    )


def downgrade() -> None:
    op.drop_table("course_copies")
