"""Alembic support shared by every service: the env.py body, the messaging tables, programmatic upgrade.

Each service keeps its own ``migrations/`` (env.py + versions) and its own version table, in its own
schema; tables are created unqualified and land in the schema through the search path.
"""

from __future__ import annotations

import asyncio
import os

import sqlalchemy as sa
from alembic import command, context, op
from alembic.config import Config
from sqlalchemy import MetaData, text
from sqlalchemy.dialects import postgresql
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool

from spendsense_shared.db import check_schema_name


def run_alembic_env(target_metadata: MetaData) -> None:
    """The whole of a service's ``migrations/env.py``: migrate its schema online."""
    config = context.config
    url = config.attributes.get("database_url") or os.environ["SPENDSENSE_DATABASE_URL"]
    schema = check_schema_name(config.attributes.get("schema") or os.environ["SPENDSENSE_DB_SCHEMA"])

    def migrate(connection: Connection) -> None:
        context.configure(connection=connection, target_metadata=target_metadata, version_table_schema=schema)
        with context.begin_transaction():
            context.run_migrations()

    async def run() -> None:
        engine = create_async_engine(url, poolclass=NullPool)
        async with engine.connect() as connection:
            await connection.execute(text(f'CREATE SCHEMA IF NOT EXISTS "{schema}"'))
            await connection.execute(text(f'SET search_path TO "{schema}"'))
            await connection.commit()
            await connection.run_sync(migrate)
            await connection.commit()
        await engine.dispose()

    asyncio.run(run())


def alembic_config(package: str, database_url: str, schema: str) -> Config:
    config = Config()
    config.set_main_option("script_location", f"{package}:migrations")
    config.attributes["database_url"] = database_url
    config.attributes["schema"] = schema
    return config


def upgrade(package: str, database_url: str, schema: str, revision: str = "head") -> None:
    """Apply ``package``'s migrations to ``schema`` (blocking; call from a thread inside an event loop)."""
    command.upgrade(alembic_config(package, database_url, schema), revision)


def create_messaging_tables() -> None:
    """Used by every service's first migration: the outbox and inbox of messaging.tables."""
    op.create_table(
        "outbox",
        sa.Column("seq", sa.BigInteger, sa.Identity(), primary_key=True),
        sa.Column("event_id", sa.Uuid, nullable=False, unique=True),
        sa.Column("event_type", sa.String(100), nullable=False),
        sa.Column("payload", postgresql.JSONB, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
        sa.Column("published_at", sa.DateTime(timezone=True)),
    )
    op.create_index(
        "ix_outbox_unpublished", "outbox", ["seq"], postgresql_where=sa.text("published_at IS NULL")
    )
    op.create_table(
        "inbox",
        sa.Column("event_id", sa.Uuid, primary_key=True),
        sa.Column("event_type", sa.String(100), nullable=False),
        sa.Column("processed_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
    )


def drop_messaging_tables() -> None:
    op.drop_table("inbox")
    op.drop_index("ix_outbox_unpublished", table_name="outbox")
    op.drop_table("outbox")
