"""Uploads are received first and parsed by the worker: where the received bytes wait, who uploaded them
in which role, the request's correlation id, and how many parses were started.

Revision ID: profile_0007
Revises: profile_0006
Create Date: 2026-11-29
"""

import sqlalchemy as sa
from alembic import op

revision = "profile_0007"
down_revision = "profile_0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column(
        "uploads",
        sa.Column("uploader_is_operator", sa.Boolean, nullable=False, server_default=sa.text("false")),
    )
    op.add_column("uploads", sa.Column("source_key", sa.String(256)))
    op.add_column("uploads", sa.Column("filename", sa.String(256)))
    op.add_column("uploads", sa.Column("content_type", sa.String(256)))
    op.add_column("uploads", sa.Column("correlation_id", sa.String(128)))
    op.add_column("uploads", sa.Column("attempts", sa.Integer, nullable=False, server_default=sa.text("0")))
    op.create_index(
        "ix_uploads_waiting", "uploads", ["created_at"], postgresql_where=sa.text("source_key IS NOT NULL")
    )


def downgrade() -> None:
    op.drop_index("ix_uploads_waiting", table_name="uploads")
    for column in (
        "attempts",
        "correlation_id",
        "content_type",
        "filename",
        "source_key",
        "uploader_is_operator",
    ):
        op.drop_column("uploads", column)
