"""Erased users, by pseudonym: reads of an erased user answer 404.

Revision ID: profile_0006
Revises: profile_0005
Create Date: 2026-11-29
"""

import sqlalchemy as sa
from alembic import op

revision = "profile_0006"
down_revision = "profile_0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "erased_users",
        sa.Column("subject", sa.String(80), primary_key=True),
        sa.Column("erased_at", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("erased_users")
