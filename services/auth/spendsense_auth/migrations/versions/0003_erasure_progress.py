"""Erasure progress: one row per erased user (by pseudonym) and one per service's confirmation.

Revision ID: auth_0003
Revises: auth_0002
Create Date: 2026-11-29
"""

import sqlalchemy as sa
from alembic import op

revision = "auth_0003"
down_revision = "auth_0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "erasures",
        sa.Column("subject", sa.String(80), primary_key=True),
        sa.Column("requested_at", sa.DateTime(timezone=True)),
        sa.Column("completed_at", sa.DateTime(timezone=True)),
    )
    op.create_table(
        "erasure_confirmations",
        sa.Column(
            "subject", sa.String(80), sa.ForeignKey("erasures.subject", ondelete="CASCADE"), primary_key=True
        ),
        sa.Column("service", sa.String(32), primary_key=True),
        sa.Column("erased_at", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("erasure_confirmations")
    op.drop_table("erasures")
