"""Tables of the profile schema (created by this service's Alembic migrations)."""

from sqlalchemy import ARRAY, Column, DateTime, Index, MetaData, String, Table, func, text

from spendsense_shared.messaging.tables import add_messaging_tables

metadata = MetaData()
messaging = add_messaging_tables(metadata)

profiles = Table(
    "profiles",
    metadata,
    Column("user_id", String(128), primary_key=True),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
)

consents = Table(
    "consents",
    metadata,
    Column("consent_id", String(64), primary_key=True),
    Column("user_id", String(128), nullable=False),
    Column("policy_version", String(32), nullable=False),
    Column("scopes", ARRAY(String(32)), nullable=False),
    Column("granted_at", DateTime(timezone=True), nullable=False),
    Column("revoked_at", DateTime(timezone=True)),
    Index("ix_consents_user", "user_id", "granted_at"),
    # At most one current consent per user, enforced by the database.
    Index("uq_consents_current", "user_id", unique=True, postgresql_where=text("revoked_at IS NULL")),
)
