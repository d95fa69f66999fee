"""Overrides (each item's citable facts, trusted names, alternatives and override text; the audit log's
before/after text) and the projection of persona.assigned (persona history, latest signals per window).

Revision ID: operator_0004
Revises: operator_0003
Create Date: 2026-11-29
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "operator_0004"
down_revision = "operator_0003"
branch_labels = None
depends_on = None

EMPTY = sa.text("'[]'::jsonb")


def upgrade() -> None:
    op.add_column("review_queue", sa.Column("facts", postgresql.JSONB, nullable=False, server_default=EMPTY))
    op.add_column(
        "review_queue", sa.Column("trusted_names", postgresql.JSONB, nullable=False, server_default=EMPTY)
    )
    op.add_column(
        "review_queue", sa.Column("alternatives", postgresql.JSONB, nullable=False, server_default=EMPTY)
    )
    op.add_column("review_queue", sa.Column("override", postgresql.JSONB))
    op.add_column("audit_log", sa.Column("before", postgresql.JSONB))
    op.add_column("audit_log", sa.Column("after", postgresql.JSONB))
    op.create_table(
        "persona_history",
        sa.Column("seq", sa.BigInteger, primary_key=True, autoincrement=True),
        sa.Column("event_id", sa.String(64), nullable=False),
        sa.Column("user_id", sa.String(128), nullable=False),
        sa.Column("window", sa.String(8), nullable=False),
        sa.Column("persona", sa.String(64), nullable=False),
        sa.Column("matched", postgresql.JSONB, nullable=False),
        sa.Column("rule_set_version", sa.String(32), nullable=False),
        sa.Column("as_of", sa.Date, nullable=False),
        sa.Column("upload_id", sa.String(64)),
        sa.Column("reason", sa.String(16), nullable=False),
        sa.Column("assigned_at", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("event_id", "window", name="uq_persona_history_event_window"),
    )
    op.create_index("ix_persona_history_user", "persona_history", ["user_id", "assigned_at", "seq"])
    op.create_table(
        "user_signals",
        sa.Column("user_id", sa.String(128), primary_key=True),
        sa.Column("window", sa.String(8), primary_key=True),
        sa.Column("signals", postgresql.JSONB, nullable=False),
        sa.Column("as_of", sa.Date, nullable=False),
        sa.Column("rule_set_version", sa.String(32), nullable=False),
        sa.Column("upload_id", sa.String(64)),
        sa.Column("assigned_at", sa.DateTime(timezone=True), nullable=False),
    )


def downgrade() -> None:
    op.drop_table("user_signals")
    op.drop_table("persona_history")
    op.drop_column("audit_log", "after")
    op.drop_column("audit_log", "before")
    for column in ("override", "alternatives", "trusted_names", "facts"):
        op.drop_column("review_queue", column)
