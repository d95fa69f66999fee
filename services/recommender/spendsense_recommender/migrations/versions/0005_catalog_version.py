"""Each recommendation names the catalog version of the item it shows (an override may show another item
of the same catalog); existing rows take the version their decision trace recorded. Status may now also
be ``overridden`` (visible) or ``override_refused`` (hidden): the column is wide enough already.

Revision ID: recommender_0005
Revises: recommender_0004
Create Date: 2026-11-29
"""

import sqlalchemy as sa
from alembic import op

revision = "recommender_0005"
down_revision = "recommender_0004"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("recommendations", sa.Column("catalog_version", sa.String(32)))
    op.execute(
        "UPDATE recommendations AS r SET catalog_version = t.trace -> 'catalog' ->> 'version' "
        "FROM traces AS t WHERE t.recommendation_id = r.id"
    )


def downgrade() -> None:
    op.drop_column("recommendations", "catalog_version")
