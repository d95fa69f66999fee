"""Every committed change to the tables the API's cached reads depend on notifies the users it touched
(``spendsense_shared.user_changes``), so an API process forgets what it remembered of them.

Revision ID: recommender_0006
Revises: recommender_0005
Create Date: 2026-11-30
"""

from alembic import op

from spendsense_shared.user_changes import notify_users_changed, stop_notifying_users_changed

revision = "recommender_0006"
down_revision = "recommender_0005"
branch_labels = None
depends_on = None

TABLES = [("recommendations", "user_id", False), ("consent_projection", "user_id", False)]


def upgrade() -> None:
    notify_users_changed(op.execute, TABLES)


def downgrade() -> None:
    stop_notifying_users_changed(op.execute, TABLES)
