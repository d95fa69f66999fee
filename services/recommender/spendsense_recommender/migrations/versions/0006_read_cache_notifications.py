"""Every committed change to the tables the API's cached reads depend on notifies the users it touched
(``spendsense_shared.user_changes``), so an API process forgets what it remembered of them.

Revision ID: recommender_0006
Revises: recommender_0005
Create Date: 2026-11-30
"""

from alembic import op

from spendsense_shared.user_changes import drop_users_changed_sql, notify_users_changed_sql

revision = "recommender_0006"
down_revision = "recommender_0005"
branch_labels = None
depends_on = None

TABLES = [("recommendations", "user_id", False), ("consent_projection", "user_id", False)]


def upgrade() -> None:
    for table, column, array in TABLES:
        for statement in notify_users_changed_sql(table, column, array=array):
            op.execute(statement)


def downgrade() -> None:
    for table, _, _ in TABLES:
        for statement in drop_users_changed_sql(table):
            op.execute(statement)
    op.execute("DROP FUNCTION IF EXISTS notify_users_changed()")
