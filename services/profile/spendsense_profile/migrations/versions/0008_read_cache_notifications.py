"""Every committed change to the tables the API's cached reads depend on notifies the users it touched
(``spendsense_shared.user_changes``), so an API process forgets what it remembered of them.

Revision ID: profile_0008
Revises: profile_0007
Create Date: 2026-11-30
"""

from alembic import op

from spendsense_shared.user_changes import drop_users_changed_sql, notify_users_changed_sql

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
    for table, column, array in TABLES:
        for statement in notify_users_changed_sql(table, column, array=array):
            op.execute(statement)


def downgrade() -> None:
    for table, _, _ in TABLES:
        for statement in drop_users_changed_sql(table):
            op.execute(statement)
    op.execute("DROP FUNCTION IF EXISTS notify_users_changed()")
