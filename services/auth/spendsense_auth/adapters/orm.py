"""Tables of the auth schema (created by this service's Alembic migrations)."""

from sqlalchemy import Column, DateTime, ForeignKey, Index, MetaData, String, Table, UniqueConstraint, func
from sqlalchemy.dialects.postgresql import ARRAY

from spendsense_shared.messaging.tables import add_messaging_tables

metadata = MetaData()
messaging = add_messaging_tables(metadata)

users = Table(
    "users",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("email", String(320), unique=True),  # normalized, lower-cased
    Column("username", String(32), unique=True),
    Column("display_name", String(200)),
    Column("roles", ARRAY(String(16)), nullable=False),
    Column("password_hash", String(128)),
    Column("created_at", DateTime(timezone=True), nullable=False),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
)

identities = Table(
    "identities",
    metadata,
    Column("user_id", String(64), ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
    Column("provider", String(16), nullable=False),
    Column("subject", String(320), nullable=False),
    Column("email", String(320)),
    Column("created_at", DateTime(timezone=True), nullable=False),
    UniqueConstraint("provider", "subject", name="uq_identities_provider_subject"),
    UniqueConstraint("user_id", "provider", name="uq_identities_user_provider"),
)

refresh_tokens = Table(
    "refresh_tokens",
    metadata,
    Column("token_hash", String(64), primary_key=True),  # SHA-256 hex of the opaque token
    Column("family_id", String(64), nullable=False),
    Column("user_id", String(64), ForeignKey("users.id", ondelete="CASCADE"), nullable=False),
    Column("issued_at", DateTime(timezone=True), nullable=False),
    Column("expires_at", DateTime(timezone=True), nullable=False),
    Column("rotated_at", DateTime(timezone=True)),
    Column("revoked_at", DateTime(timezone=True)),
    Index("ix_refresh_tokens_family", "family_id"),
    Index("ix_refresh_tokens_user", "user_id"),
)

# Erasure progress: keyed by the pseudonym of the erased user's id, so it never names them.
erasures = Table(
    "erasures",
    metadata,
    Column("subject", String(80), primary_key=True),
    Column("requested_at", DateTime(timezone=True)),
    Column("completed_at", DateTime(timezone=True)),
)

erasure_confirmations = Table(
    "erasure_confirmations",
    metadata,
    Column("subject", String(80), ForeignKey("erasures.subject", ondelete="CASCADE"), primary_key=True),
    Column("service", String(32), primary_key=True),
    Column("erased_at", DateTime(timezone=True), nullable=False),
)
