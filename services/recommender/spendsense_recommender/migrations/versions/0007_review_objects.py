"""Which batch object of the data bucket holds each user's review items line (an erasure blanks it).

Revision ID: recommender_0007
Revises: recommender_0006
Create Date: 2026-11-30
"""

from alembic import op

from spendsense_shared.claimed_lines_store import create_claimed_lines_table

revision = "recommender_0007"
down_revision = "recommender_0006"
branch_labels = None
depends_on = None


def upgrade() -> None:
    create_claimed_lines_table("review_objects")


def downgrade() -> None:
    op.drop_table("review_objects")
