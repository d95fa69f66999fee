"""The operator service's projection of consent events.

Revision ID: operator_0002
Revises: operator_0001
Create Date: 2026-11-25
"""

from alembic import op

from spendsense_shared.consent_store import create_consent_projection_table

revision = "operator_0002"
down_revision = "operator_0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    create_consent_projection_table()


def downgrade() -> None:
    op.drop_table("consent_projection")
