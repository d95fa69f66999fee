"""Every committed change to the tables the API's cached reads depend on notifies the users it touched
(``spendsense_shared.user_changes``), so an API process forgets what it remembered of them.

Revision ID: profile_0008
Revises: profile_0007
Create Date: 2026-11-30
"""

from alembic import op

from spendsense_shared.user_changes import notify_users_changed, stop_notifying_users_changed

revision = "profile_0008"
down_revision = "profile_0007"
branch_labels = None
depends_on = None

TABLES = [
    ("profiles", "user_id", False),
    ("consents", "user_id", False),
    ("uploads", "user_ids", True),
    ("upload_users", "user_id", False),
]


def upgrade() -> None:
    notify_users_changed(op.execute, TABLES)


def downgrade() -> None:
    stop_notifying_users_changed(op.execute, TABLES)
