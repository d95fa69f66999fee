"""Uploads, their per-user progress, and the normalized accounts, transactions and credit liabilities.

Revision ID: profile_0003
Revises: profile_0002
Create Date: 2026-11-25
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "profile_0003"
down_revision = "profile_0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "uploads",
        sa.Column("upload_id", sa.String(64), primary_key=True),
        sa.Column("uploader_id", sa.String(128), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("error", postgresql.JSONB),
        sa.Column("format", sa.String(32)),
        sa.Column("size_bytes", sa.BigInteger, nullable=False),
        sa.Column("user_ids", sa.ARRAY(sa.String(128)), nullable=False),
        sa.Column("counts", postgresql.JSONB, nullable=False),
        sa.Column("notes", postgresql.JSONB, nullable=False),
        sa.Column("as_of", sa.Date),
        sa.Column("keys", postgresql.JSONB, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
    )
    op.create_index("ix_uploads_uploader", "uploads", ["uploader_id", "created_at"])
    op.create_table(
        "upload_users",
        sa.Column("upload_id", sa.String(64), primary_key=True),
        sa.Column("user_id", sa.String(128), primary_key=True),
        sa.Column("stage", sa.String(16), nullable=False),
        sa.Column("reason", sa.String(200)),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
    )
    op.create_index("ix_upload_users_user", "upload_users", ["user_id"])
    op.create_table(
        "accounts",
        sa.Column("user_id", sa.String(128), primary_key=True),
        sa.Column("account_id", sa.String(128), primary_key=True),
        sa.Column("name", sa.String),
        sa.Column("official_name", sa.String),
        sa.Column("type", sa.String(32)),
        sa.Column("subtype", sa.String(64)),
        sa.Column("holder_category", sa.String(16)),
        sa.Column("balance_available", sa.Float),
        sa.Column("balance_current", sa.Float),
        sa.Column("balance_limit", sa.Float),
        sa.Column("iso_currency_code", sa.String(8)),
        sa.Column("mask", sa.String(8)),
        sa.Column("upload_id", sa.String(64), nullable=False),
    )
    op.create_table(
        "transactions",
        sa.Column("user_id", sa.String(128), primary_key=True),
        sa.Column("transaction_id", sa.String(128), primary_key=True),
        sa.Column("account_id", sa.String(128), nullable=False),
        sa.Column("date", sa.Date, nullable=False),
        sa.Column("authorized_date", sa.Date),
        sa.Column("amount", sa.Float, nullable=False),
        sa.Column("iso_currency_code", sa.String(8)),
        sa.Column("name", sa.String),
        sa.Column("merchant_name", sa.String),
        sa.Column("merchant_entity_id", sa.String(128)),
        sa.Column("payment_channel", sa.String(16)),
        sa.Column("category_primary", sa.String(64)),
        sa.Column("category_detailed", sa.String(96)),
        sa.Column("category_detailed_raw", sa.String(96)),
        sa.Column("pending", sa.Boolean, nullable=False),
        sa.Column("upload_id", sa.String(64), nullable=False),
    )
    op.create_table(
        "credit_liabilities",
        sa.Column("user_id", sa.String(128), primary_key=True),
        sa.Column("account_id", sa.String(128), primary_key=True),
        sa.Column("purchase_apr", sa.Float),
        sa.Column("interest_charge_amount", sa.Float),
        sa.Column("is_overdue", sa.Boolean),
        sa.Column("last_payment_amount", sa.Float),
        sa.Column("last_payment_date", sa.Date),
        sa.Column("last_statement_balance", sa.Float),
        sa.Column("last_statement_issue_date", sa.Date),
        sa.Column("minimum_payment_amount", sa.Float),
        sa.Column("next_payment_due_date", sa.Date),
        sa.Column("upload_id", sa.String(64), nullable=False),
    )


def downgrade() -> None:
    for table in ("credit_liabilities", "transactions", "accounts", "upload_users", "uploads"):
        op.drop_table(table)
