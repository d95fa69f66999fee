"""Every committed change to the tables the API's cached reads depend on notifies the users it touched
(``spendsense_shared.user_changes``), so an API process forgets what it remembered of them.

Revision ID: features_0005
Revises: features_0004
Create Date: 2026-11-30
"""

from alembic import op

from spendsense_shared.user_changes import notify_users_changed, stop_notifying_users_changed

revision = "features_0005"
down_revision = "features_0004"
branch_labels = None
depends_on = None

TABLES = [
    ("persona_assignments", "user_id", False),
    ("persona_history", "user_id", False),
    ("consent_projection", "user_id", False),
]


def upgrade() -> None:
    notify_users_changed(op.execute, TABLES)


def downgrade() -> None:
    stop_notifying_users_changed(op.execute, TABLES)
