"""Each trace names the hash chain it was sealed in (``chain_id``, the id of the user it was made for), so
a user's traces can come from several chains once accounts are merged, each chain verified as sealed.

Revision ID: recommender_0004
Revises: recommender_0003
Create Date: 2026-11-26
"""

import sqlalchemy as sa
from alembic import op

revision = "recommender_0004"
down_revision = "recommender_0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("traces", sa.Column("chain_id", sa.String(128)))
    op.execute("UPDATE traces SET chain_id = user_id")  # before any merge, each user's traces are one chain
    op.alter_column("traces", "chain_id", nullable=False)
    op.create_index("ix_traces_chain", "traces", ["chain_id", "seq"])


def downgrade() -> None:
    op.drop_index("ix_traces_chain", table_name="traces")
    op.drop_column("traces", "chain_id")
