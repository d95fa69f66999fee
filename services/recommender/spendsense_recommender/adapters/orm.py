"""Tables of the recommender schema (created by this service's Alembic migrations)."""

from sqlalchemy import (
    BigInteger,
    Column,
    Date,
    DateTime,
    Identity,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    func,
)
from sqlalchemy.dialects.postgresql import JSONB

from spendsense_shared.claimed_lines_store import add_claimed_lines
from spendsense_shared.consent_store import add_consent_projection
from spendsense_shared.messaging.tables import add_messaging_tables

metadata = MetaData()
messaging = add_messaging_tables(metadata)
consent_projection = add_consent_projection(metadata)

recommendations = Table(
    "recommendations",
    metadata,
    Column("id", String(64), primary_key=True),  # derived from (user, upload, as-of, item): re-runs collide
    Column("user_id", String(128), nullable=False),
    Column("kind", String(16), nullable=False),
    Column("item_id", String(64), nullable=False),  # the catalog item shown (an override may change it)
    Column("catalog_version", String(32)),  # of that item (NULL: stored before migration 0005)
    Column("rank", Integer, nullable=False),
    Column("persona", String(64), nullable=False),
    # What the user is shown: the generated text, or an accepted override stored in its place (the
    # generated text stays in the sealed trace, the override's before and after in its operator actions).
    Column("title", Text, nullable=False),
    Column("body", Text, nullable=False),
    Column("rationale", Text, nullable=False),
    Column("disclosure", Text, nullable=False),
    Column("details", JSONB, nullable=False),  # format, partner, product type, url
    Column("generator", String(16), nullable=False),
    # pending_review | approved | overridden (both visible) | rejected | flagged | override_refused
    Column("status", String(16), nullable=False),
    Column("upload_id", String(64)),
    Column("as_of", Date),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Index("ix_recommendations_user", "user_id", "status", "created_at"),
)

# Decision traces, hash-chained per user (seq orders the chain). ``chain_id`` is the user the trace was
# sealed for and never changes; ``user_id`` is whose trace it is now (they differ once accounts are merged:
# the merged-away account's traces keep their chain, whose stored hashes are never rewritten).
traces = Table(
    "traces",
    metadata,
    Column("seq", BigInteger, Identity(), primary_key=True),
    Column("recommendation_id", String(64), nullable=False, unique=True),
    Column("user_id", String(128), nullable=False),
    Column("chain_id", String(128), nullable=False),
    Column("trace", JSONB, nullable=False),
    Column("hash", String(64), nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Index("ix_traces_user", "user_id", "seq"),
    Index("ix_traces_chain", "chain_id", "seq"),
)

feedback = Table(
    "feedback",
    metadata,
    Column("id", BigInteger, Identity(), primary_key=True),
    Column("recommendation_id", String(64), nullable=False),
    Column("user_id", String(128), nullable=False),
    Column("item_id", String(64), nullable=False),
    Column("kind", String(16), nullable=False),  # helpful | not_helpful | dismissed | saved
    Column("comment", Text),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Index("ix_feedback_user", "user_id", "kind"),
)

# Which batch object of the data bucket holds a line of each user's review items (an erasure blanks it):
# the line names ``report_user_id``, the user's own id or that of an account merged into theirs.
review_objects = add_claimed_lines(metadata, "review_objects")
