"""Tables of the features schema (created by this service's Alembic migrations)."""

from sqlalchemy import Column, Date, DateTime, Index, MetaData, String, Table, func
from sqlalchemy.dialects.postgresql import JSONB

from spendsense_shared.claimed_lines_store import add_claimed_lines
from spendsense_shared.consent_store import add_consent_projection
from spendsense_shared.messaging.tables import add_messaging_tables

metadata = MetaData()
messaging = add_messaging_tables(metadata)
consent_projection = add_consent_projection(metadata)

# The latest signals per user and window.
signals = Table(
    "signals",
    metadata,
    Column("user_id", String(128), primary_key=True),
    Column("window", String(8), primary_key=True),
    Column("as_of", Date, nullable=False),
    Column("upload_id", String(64)),
    Column("values", JSONB, nullable=False),
    Column("computed_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
)

# The current persona per user and window…
persona_assignments = Table(
    "persona_assignments",
    metadata,
    Column("user_id", String(128), primary_key=True),
    Column("window", String(8), primary_key=True),
    Column("primary_persona", String(64), nullable=False),
    Column("matched", JSONB, nullable=False),  # [{"id", "criteria": [...]}] in priority order
    Column("rule_set_version", String(32), nullable=False),
    Column("as_of", Date, nullable=False),
    Column("upload_id", String(64)),
    Column("assigned_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
)

# …and every assignment ever made, so transitions (and their dates) can be shown.
persona_history = Table(
    "persona_history",
    metadata,
    Column("user_id", String(128), nullable=False),
    Column("window", String(8), nullable=False),
    Column("primary_persona", String(64), nullable=False),
    Column("previous_persona", String(64)),
    Column("rule_set_version", String(32), nullable=False),
    Column("as_of", Date, nullable=False),
    Column("upload_id", String(64)),
    Column("assigned_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Index("ix_persona_history_user", "user_id", "assigned_at"),
)

# Persona rule sets: versioned documents, validated before they are stored; one is active.
rule_sets = Table(
    "rule_sets",
    metadata,
    Column("version", String(32), primary_key=True),
    Column("document", JSONB, nullable=False),
    Column("created_by", String(128), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("activated_at", DateTime(timezone=True)),
)

# The latest normalized snapshot of each user's data (so a re-score reads it without the profile service).
user_snapshots = Table(
    "user_snapshots",
    metadata,
    Column("user_id", String(128), primary_key=True),
    Column("upload_id", String(64), nullable=False),
    Column("object_keys", JSONB, nullable=False),
    Column("as_of", Date),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
)

# Which batch object of the data bucket holds a line of each user's PersonaDetails (an erasure blanks it):
# the line's report is of ``report_user_id``, the user's own id or that of an account merged into theirs.
details_objects = add_claimed_lines(metadata, "details_objects")
