"""Every service's Alembic migrations, applied to a fresh schema on real PostgreSQL."""

from __future__ import annotations

import asyncio
import uuid

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.script import ScriptDirectory
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool
from sqlalchemy.sql import Executable

from spendsense_shared.messaging.catalog import SERVICES
from spendsense_shared.migrations import alembic_config, upgrade


async def query(database_url: str, sql: str | Executable, **params: object) -> list[tuple]:
    engine = create_async_engine(database_url, poolclass=NullPool)
    try:
        async with engine.begin() as conn:
            result = await conn.execute(text(sql) if isinstance(sql, str) else sql, params)
            return [tuple(row) for row in result.all()] if result.returns_rows else []
    finally:
        await engine.dispose()


def versions(schema: str) -> Executable:
    return sa.select(sa.table("alembic_version", sa.column("version_num"), schema=schema).c.version_num)


def inbox(schema: str) -> sa.TableClause:
    return sa.table("inbox", sa.column("event_id"), sa.column("event_type"), schema=schema)


async def tables_by_schema(database_url: str, names: tuple[str, ...]) -> set[tuple[str, str]]:
    rows = await query(
        database_url,
        "SELECT table_schema, table_name FROM information_schema.tables WHERE table_name = ANY(:names)",
        names=list(names),
    )
    return set(rows)


def head_revision(service: str, database_url: str, schema: str) -> str:
    script = ScriptDirectory.from_config(alembic_config(f"spendsense_{service}", database_url, schema))
    [head] = script.get_heads()
    return head


@pytest.mark.parametrize("service", SERVICES)
async def test_migrations_create_messaging_tables_and_version_table_in_the_service_schema_only(
    migrated, infra, service
):
    before = await tables_by_schema(infra.database_url, ("outbox", "inbox", "alembic_version"))

    settings = await migrated(service)

    schema = settings.schema_name
    created = await tables_by_schema(infra.database_url, ("outbox", "inbox", "alembic_version")) - before
    assert created == {(schema, "outbox"), (schema, "inbox"), (schema, "alembic_version")}
    [(version,)] = await query(infra.database_url, versions(schema))
    assert version == head_revision(service, infra.database_url, schema)


@pytest.mark.parametrize("service", ["profile", "recommender"])
async def test_second_upgrade_is_a_no_op(migrated, infra, service):
    settings = await migrated(service)
    schema = settings.schema_name
    snapshot_sql = """
        SELECT c.relname, c.oid::bigint, c.relkind::text FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE n.nspname = :schema ORDER BY c.relname
    """
    before = await query(infra.database_url, snapshot_sql, schema=schema)
    version_before = await query(infra.database_url, versions(schema))

    await asyncio.to_thread(upgrade, f"spendsense_{service}", infra.database_url, schema)

    assert await query(infra.database_url, snapshot_sql, schema=schema) == before
    assert await query(infra.database_url, versions(schema)) == version_before
    assert {name for name, _, kind in before if kind == "r"} >= {"outbox", "inbox", "alembic_version"}


async def test_outbox_has_the_columns_and_partial_index_the_relay_relies_on(migrated, infra):
    settings = await migrated("features")
    schema = settings.schema_name

    columns = await query(
        infra.database_url,
        "SELECT column_name, is_nullable FROM information_schema.columns "
        "WHERE table_schema = :schema AND table_name = 'outbox'",
        schema=schema,
    )
    [(index_definition,)] = await query(
        infra.database_url,
        "SELECT indexdef FROM pg_indexes WHERE schemaname = :schema AND indexname = 'ix_outbox_unpublished'",
        schema=schema,
    )

    assert dict(columns) == {
        "seq": "NO",
        "event_id": "NO",
        "event_type": "NO",
        "payload": "NO",
        "created_at": "NO",
        "published_at": "YES",
    }
    assert "WHERE (published_at IS NULL)" in index_definition


async def test_two_services_migrate_side_by_side_without_touching_each_other(migrated, infra):
    profile = await migrated("profile")
    await query(
        infra.database_url,
        sa.insert(inbox(profile.schema_name)).values(event_id=uuid.uuid4(), event_type="user.registered"),
    )

    features = await migrated("features")

    [(count,)] = await query(
        infra.database_url, sa.select(sa.func.count()).select_from(inbox(profile.schema_name))
    )
    [(other,)] = await query(
        infra.database_url, sa.select(sa.func.count()).select_from(inbox(features.schema_name))
    )
    assert (count, other) == (1, 0)


@pytest.mark.parametrize(
    ("service", "table"), [("features", "details_objects"), ("recommender", "review_objects")]
)
async def test_each_index_of_claimed_lines_is_created_with_one_shape_and_dropped_by_its_downgrade(
    migrated, infra, service, table
):
    """features' ``details_objects`` (migration 0006) and the recommender's ``review_objects`` (0007):
    one table shape, from :mod:`spendsense_shared.claimed_lines_store`."""
    settings = await migrated(service)
    schema = settings.schema_name
    columns = await query(
        infra.database_url,
        "SELECT column_name, data_type, character_maximum_length, is_nullable FROM information_schema.columns"
        " WHERE table_schema = :schema AND table_name = :table ORDER BY ordinal_position",
        schema=schema,
        table=table,
    )
    assert columns == [
        ("user_id", "character varying", 128, "NO"),
        ("key", "character varying", 1024, "NO"),
        ("report_user_id", "character varying", 128, "NO"),
    ]
    primary_key = await query(
        infra.database_url,
        "SELECT kcu.column_name FROM information_schema.table_constraints tc"
        " JOIN information_schema.key_column_usage kcu"
        " ON kcu.constraint_name = tc.constraint_name AND kcu.table_schema = tc.table_schema"
        " WHERE tc.table_schema = :schema AND tc.table_name = :table AND tc.constraint_type = 'PRIMARY KEY'"
        " ORDER BY kcu.ordinal_position",
        schema=schema,
        table=table,
    )
    assert [c for (c,) in primary_key] == ["user_id", "key", "report_user_id"]

    previous = {"features": "features_0005", "recommender": "recommender_0006"}[service]
    config = alembic_config(f"spendsense_{service}", infra.database_url, schema)
    await asyncio.to_thread(command.downgrade, config, previous)
    assert (schema, table) not in await tables_by_schema(infra.database_url, (table,))
    await asyncio.to_thread(upgrade, f"spendsense_{service}", infra.database_url, schema)
    assert (schema, table) in await tables_by_schema(infra.database_url, (table,))
