"""Tables of the operator schema (created by this service's Alembic migrations)."""

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Date,
    DateTime,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB

from spendsense_shared.consent_store import add_consent_projection
from spendsense_shared.messaging.tables import add_messaging_tables

metadata = MetaData()
messaging = add_messaging_tables(metadata)
consent_projection = add_consent_projection(metadata)

# Every recommendation announced for review, with what a reviewer needs, and its review state.
review_queue = Table(
    "review_queue",
    metadata,
    Column("recommendation_id", String(64), primary_key=True),
    Column("user_id", String(128), nullable=False),
    Column("upload_id", String(64)),
    Column("persona", String(64), nullable=False),
    Column("kind", String(16), nullable=False),
    Column("title", Text, nullable=False),
    Column("body", Text, nullable=False),
    Column("rationale", Text, nullable=False),
    Column("disclosure", Text, nullable=False),
    Column("catalog_item_id", String(64), nullable=False),
    Column("catalog_version", String(32), nullable=False),
    Column("rank", Integer, nullable=False),
    Column("guardrails", JSONB, nullable=False),  # {"tone": bool, "grounding", "disclosure", "length"}
    Column("generator", String(16), nullable=False),
    Column("fell_back_to_template", Boolean, nullable=False),
    Column("priority", Integer, nullable=False),
    Column("status", String(16), nullable=False),
    Column("flagged", Boolean, nullable=False, server_default="false"),
    Column("decided_by", String(128)),
    Column("decided_at", DateTime(timezone=True)),
    Column("reason", Text),
    Column("created_at", DateTime(timezone=True), nullable=False),
    # what an edited text is checked against (CitableFact list, catalog strings) and what may replace it
    Column("facts", JSONB, nullable=False, server_default=text("'[]'::jsonb")),
    Column("trusted_names", JSONB, nullable=False, server_default=text("'[]'::jsonb")),
    Column("alternatives", JSONB, nullable=False, server_default=text("'[]'::jsonb")),
    Column(
        "override", JSONB(none_as_null=True)
    ),  # OverrideText once overridden; the columns above keep the original
    Index("ix_review_queue_user", "user_id", "created_at"),
    Index("ix_review_queue_status", "status", "created_at"),
    Index("ix_review_queue_priority", "priority", "created_at", "recommendation_id"),
)

# Every operator action: who, when, on what, the status before and after, and why.
audit_log = Table(
    "audit_log",
    metadata,
    Column("seq", BigInteger, primary_key=True, autoincrement=True),
    Column("operator_id", String(128), nullable=False),
    Column("action", String(16), nullable=False),
    Column("recommendation_id", String(64), nullable=False),
    Column("user_id", String(128), nullable=False),
    Column("before_status", String(16), nullable=False),
    Column("after_status", String(16), nullable=False),
    Column("reason", Text),
    Column("at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("before", JSONB(none_as_null=True)),  # an override: the text shown before it
    Column("after", JSONB(none_as_null=True)),  # an override: the text shown instead
    Index("ix_audit_log_user", "user_id", "seq"),
    Index("ix_audit_log_operator", "operator_id", "seq"),
)

# Every persona assignment per user and window (the projection of persona.assigned), newest by assigned_at.
# An assignment is recorded once: per event (a redelivery), and per user, upload, window, as-of date,
# rule-set version and persona (the same analysis published again in another event: features analyzes a
# user once per upload, and announces that analysis again when what followed it was lost). Re-scores have
# no upload: each is told apart by its event only.
persona_history = Table(
    "persona_history",
    metadata,
    Column("seq", BigInteger, primary_key=True, autoincrement=True),
    Column("event_id", String(64), nullable=False),
    Column("user_id", String(128), nullable=False),
    Column("window", String(8), nullable=False),
    Column("persona", String(64), nullable=False),
    Column("matched", JSONB, nullable=False),
    Column("rule_set_version", String(32), nullable=False),
    Column("as_of", Date, nullable=False),
    Column("upload_id", String(64)),
    Column("reason", String(16), nullable=False),
    Column("assigned_at", DateTime(timezone=True), nullable=False),
    UniqueConstraint("event_id", "window", name="uq_persona_history_event_window"),
    Index(
        "uq_persona_history_assignment",
        "user_id",
        "upload_id",
        "window",
        "as_of",
        "rule_set_version",
        "persona",
        unique=True,
        postgresql_where=text("upload_id IS NOT NULL"),
    ),
    Index("ix_persona_history_user", "user_id", "assigned_at", "seq"),
)

# The latest signals per user and window, from the analysis report behind persona.assigned.
user_signals = Table(
    "user_signals",
    metadata,
    Column("user_id", String(128), primary_key=True),
    Column("window", String(8), primary_key=True),
    Column("signals", JSONB, nullable=False),
    Column("as_of", Date, nullable=False),
    Column("rule_set_version", String(32), nullable=False),
    Column("upload_id", String(64)),
    Column("assigned_at", DateTime(timezone=True), nullable=False),
)
