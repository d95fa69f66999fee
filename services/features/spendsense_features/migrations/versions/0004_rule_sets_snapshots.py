"""Rule-set versions (one active) and each user's latest data snapshot.

Revision ID: features_0004
Revises: features_0003
Create Date: 2026-11-25
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "features_0004"
down_revision = "features_0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "rule_sets",
        sa.Column("version", sa.String(32), primary_key=True),
        sa.Column("document", postgresql.JSONB, nullable=False),
        sa.Column("created_by", sa.String(128), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.Column("activated_at", sa.DateTime(timezone=True)),
    )
    op.create_table(
        "user_snapshots",
        sa.Column("user_id", sa.String(128), primary_key=True),
        sa.Column("upload_id", sa.String(64), nullable=False),
        sa.Column("object_keys", postgresql.JSONB, nullable=False),
        sa.Column("as_of", sa.Date),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
    )


def downgrade() -> None:
    op.drop_table("user_snapshots")
    op.drop_table("rule_sets")
