"""Tables of the profile schema (created by this service's Alembic migrations)."""

from sqlalchemy import MetaData

from spendsense_shared.messaging.tables import add_messaging_tables

metadata = MetaData()
messaging = add_messaging_tables(metadata)
