"""Push devices: their Amazon SNS platform endpoint, and when it was found disabled.

Revision ID: profile_0005
Revises: profile_0004
Create Date: 2026-11-29
"""

import sqlalchemy as sa
from alembic import op

revision = "profile_0005"
down_revision = "profile_0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("push_devices", sa.Column("endpoint_arn", sa.String(1024), nullable=True))
    op.add_column("push_devices", sa.Column("disabled_at", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    op.drop_column("push_devices", "disabled_at")
    op.drop_column("push_devices", "endpoint_arn")
