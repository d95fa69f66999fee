"""Which batch object of the data bucket holds each user's ``PersonaDetails`` line (an erasure blanks it).

Revision ID: features_0006
Revises: features_0005
Create Date: 2026-11-30
"""

from alembic import op

from spendsense_shared.claimed_lines_store import create_claimed_lines_table

revision = "features_0006"
down_revision = "features_0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    create_claimed_lines_table("details_objects")


def downgrade() -> None:
    op.drop_table("details_objects")
