"""Push-notification device tokens.

Revision ID: profile_0004
Revises: profile_0003
Create Date: 2026-11-25
"""

import sqlalchemy as sa
from alembic import op

revision = "profile_0004"
down_revision = "profile_0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "push_devices",
        sa.Column("token", sa.String(512), primary_key=True),
        sa.Column("user_id", sa.String(128), nullable=False),
        sa.Column("platform", sa.String(16), nullable=False),
        sa.Column("registered_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
    )
    op.create_index("ix_push_devices_user", "push_devices", ["user_id"])


def downgrade() -> None:
    op.drop_table("push_devices")
