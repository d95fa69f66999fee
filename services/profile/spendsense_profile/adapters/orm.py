"""Tables of the profile schema (created by this service's Alembic migrations)."""

from sqlalchemy import (
    BigInteger,
    Boolean,
    Column,
    Date,
    DateTime,
    Float,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY, JSONB  # PostgreSQL's ARRAY: containment operators

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

uploads = Table(
    "uploads",
    metadata,
    Column("upload_id", String(64), primary_key=True),
    Column("uploader_id", String(128), nullable=False),
    Column("status", String(16), nullable=False),  # received | ingested | analyzed | recommended | failed
    Column("error", JSONB),
    Column("format", String(32)),
    Column("size_bytes", BigInteger, nullable=False),
    Column("user_ids", ARRAY(String(128)), nullable=False),
    Column("counts", JSONB, nullable=False),
    Column("notes", JSONB, nullable=False),
    Column("as_of", Date),
    Column("keys", JSONB, nullable=False),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    # A received upload's bytes in the data bucket (a name under the profile's prefix), until the worker
    # has parsed them and deleted them: the worker's queue is the uploads with a source.
    Column("uploader_is_operator", Boolean, nullable=False, server_default=text("false")),
    Column("source_key", String(256)),
    Column("filename", String(256)),
    Column("content_type", String(256)),
    Column("correlation_id", String(128)),
    Column("attempts", Integer, nullable=False, server_default=text("0")),
    Index("ix_uploads_waiting", "created_at", postgresql_where=text("source_key IS NOT NULL")),
)


def uploads_channel(schema: str) -> str:
    """The LISTEN/NOTIFY channel on which a committed received upload wakes the schema's workers."""
    return f"uploads_{schema}"


# Each user's progress through the pipeline for one upload; the upload's status is the least advanced.
upload_users = Table(
    "upload_users",
    metadata,
    Column("upload_id", String(64), primary_key=True),
    Column("user_id", String(128), primary_key=True),
    Column("stage", String(16), nullable=False),
    Column("reason", String(200)),
    Column("updated_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
)

accounts = Table(
    "accounts",
    metadata,
    Column("user_id", String(128), primary_key=True),
    Column("account_id", String(128), primary_key=True),
    Column("name", String),
    Column("official_name", String),
    Column("type", String(32)),
    Column("subtype", String(64)),
    Column("holder_category", String(16)),
    Column("balance_available", Float),
    Column("balance_current", Float),
    Column("balance_limit", Float),
    Column("iso_currency_code", String(8)),
    Column("mask", String(8)),
    Column("upload_id", String(64), nullable=False),
)

transactions = Table(
    "transactions",
    metadata,
    Column("user_id", String(128), primary_key=True),
    Column("transaction_id", String(128), primary_key=True),
    Column("account_id", String(128), nullable=False),
    Column("date", Date, nullable=False),
    Column("authorized_date", Date),
    Column("amount", Float, nullable=False),
    Column("iso_currency_code", String(8)),
    Column("name", String),
    Column("merchant_name", String),
    Column("merchant_entity_id", String(128)),
    Column("payment_channel", String(16)),
    Column("category_primary", String(64)),
    Column("category_detailed", String(96)),
    Column("category_detailed_raw", String(96)),
    Column("pending", Boolean, nullable=False),
    Column("upload_id", String(64), nullable=False),
)

credit_liabilities = Table(
    "credit_liabilities",
    metadata,
    Column("user_id", String(128), primary_key=True),
    Column("account_id", String(128), primary_key=True),
    Column("purchase_apr", Float),
    Column("interest_charge_amount", Float),
    Column("is_overdue", Boolean),
    Column("last_payment_amount", Float),
    Column("last_payment_date", Date),
    Column("last_statement_balance", Float),
    Column("last_statement_issue_date", Date),
    Column("minimum_payment_amount", Float),
    Column("next_payment_due_date", Date),
    Column("upload_id", String(64), nullable=False),
)

DATA_TABLES = {"accounts": accounts, "transactions": transactions, "credit_liabilities": credit_liabilities}

# Devices registered for push notifications (APNs/FCM tokens), one row per token, with the Amazon SNS
# platform endpoint that reaches it.
push_devices = Table(
    "push_devices",
    metadata,
    Column("token", String(512), primary_key=True),
    Column("user_id", String(128), nullable=False),
    Column("platform", String(16), nullable=False),  # ios | android
    Column("registered_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("endpoint_arn", String(1024)),  # its SNS platform endpoint, created at its first push
    Column("disabled_at", DateTime(timezone=True)),  # its endpoint was found disabled or deleted
    Index("ix_push_devices_user", "user_id"),
)

# Erased users, by pseudonym only: their reads answer 404 (not 403) for whoever could have seen them.
erased_users = Table(
    "erased_users",
    metadata,
    Column("subject", String(80), primary_key=True),
    Column("erased_at", DateTime(timezone=True), nullable=False),
)
