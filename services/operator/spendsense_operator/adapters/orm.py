"""Tables of the operator schema (created by this service's Alembic migrations)."""

from sqlalchemy import MetaData

from spendsense_shared.consent_store import add_consent_projection
from spendsense_shared.messaging.tables import add_messaging_tables

metadata = MetaData()
messaging = add_messaging_tables(metadata)
consent_projection = add_consent_projection(metadata)
