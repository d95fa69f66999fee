"""Outbox and inbox of the auth schema.

Revision ID: auth_0001
Revises:
Create Date: 2026-11-25
"""

from spendsense_shared.migrations import create_messaging_tables, drop_messaging_tables

revision = "auth_0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    create_messaging_tables()


def downgrade() -> None:
    drop_messaging_tables()
