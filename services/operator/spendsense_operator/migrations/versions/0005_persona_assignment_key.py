"""The persona projection is idempotent on the assignment, not only on the event: one history row per
user, upload, window, as-of date, rule-set version and persona. The features service analyzes a user once
per upload but publishes that analysis again (a new ``persona.assigned`` event, with another id) when the
profile's reconciler announces the upload again; both events are the same assignment. Rows without an
upload (re-scores) keep being told apart by their event only.

Revision ID: operator_0005
Revises: operator_0004
Create Date: 2026-11-30
"""

import sqlalchemy as sa
from alembic import op

revision = "operator_0005"
down_revision = "operator_0004"
branch_labels = None
depends_on = None

INDEX = "uq_persona_history_assignment"
KEY = ["user_id", "upload_id", "window", "as_of", "rule_set_version", "persona"]


def upgrade() -> None:
    # The same assignment projected twice before this revision: the first projection is kept.
    op.execute(
        "DELETE FROM persona_history AS later USING persona_history AS first "  # noqa: S608 (constant)
        "WHERE later.upload_id IS NOT NULL AND later.seq > first.seq "
        + " ".join(f'AND later."{c}" = first."{c}"' for c in KEY)
    )
    op.create_index(
        INDEX, "persona_history", KEY, unique=True, postgresql_where=sa.text("upload_id IS NOT NULL")
    )


def downgrade() -> None:
    op.drop_index(INDEX, table_name="persona_history")
