"""Which batch object of the data bucket holds each user's ``PersonaDetails`` line (an erasure blanks it).

Revision ID: features_0006
Revises: features_0005
Create Date: 2026-11-30
"""

import sqlalchemy as sa
from alembic import op

revision = "features_0006"
down_revision = "features_0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "details_objects",
        sa.Column("user_id", sa.String(128), primary_key=True),
        sa.Column("key", sa.String(1024), primary_key=True),
        sa.Column("report_user_id", sa.String(128), primary_key=True),
    )


def downgrade() -> None:
    op.drop_table("details_objects")
