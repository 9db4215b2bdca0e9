"""This registry's id, which the databases it makes carry in their marker.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-26
"""

import uuid

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    instance = op.create_table(
        "instance",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("uuid", sa.String(32), nullable=False),
    )
    op.bulk_insert(instance, [{"id": 1, "uuid": uuid.uuid4().hex}])


def downgrade() -> None:
    op.drop_table("instance")
