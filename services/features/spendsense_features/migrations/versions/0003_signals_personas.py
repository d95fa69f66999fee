"""Signals, current persona assignments and persona history.

Revision ID: features_0003
Revises: features_0002
Create Date: 2026-11-25
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "features_0003"
down_revision = "features_0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "signals",
        sa.Column("user_id", sa.String(128), primary_key=True),
        sa.Column("window", sa.String(8), primary_key=True),
        sa.Column("as_of", sa.Date, nullable=False),
        sa.Column("upload_id", sa.String(64)),
        sa.Column("values", postgresql.JSONB, nullable=False),
        sa.Column("computed_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
    )
    op.create_table(
        "persona_assignments",
        sa.Column("user_id", sa.String(128), primary_key=True),
        sa.Column("window", sa.String(8), primary_key=True),
        sa.Column("primary_persona", sa.String(64), nullable=False),
        sa.Column("matched", postgresql.JSONB, nullable=False),
        sa.Column("rule_set_version", sa.String(32), nullable=False),
        sa.Column("as_of", sa.Date, nullable=False),
        sa.Column("upload_id", sa.String(64)),
        sa.Column("assigned_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
    )
    op.create_table(
        "persona_history",
        sa.Column("user_id", sa.String(128), nullable=False),
        sa.Column("window", sa.String(8), nullable=False),
        sa.Column("primary_persona", sa.String(64), nullable=False),
        sa.Column("previous_persona", sa.String(64)),
        sa.Column("rule_set_version", sa.String(32), nullable=False),
        sa.Column("as_of", sa.Date, nullable=False),
        sa.Column("upload_id", sa.String(64)),
        sa.Column("assigned_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
    )
    op.create_index("ix_persona_history_user", "persona_history", ["user_id", "assigned_at"])


def downgrade() -> None:
    for table in ("persona_history", "persona_assignments", "signals"):
        op.drop_table(table)
