"""``insert_all`` (one ``INSERT … SELECT unnest(…)`` for many rows) against PostgreSQL: the rows stored
are the rows given — JSON and JSONB values of any shape (a list is a value, not an array dimension),
dates, flags and nulls — ``replace`` replaces a stored key's row, a plain insert of a stored key fails
as it would row by row, and an array column is refused (unnest would flatten it)."""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest
from sqlalchemy import JSON, Boolean, Column, Date, MetaData, String, Table, select, text
from sqlalchemy.dialects.postgresql import ARRAY, JSONB
from sqlalchemy.exc import IntegrityError

from spendsense_profile.bootstrap import SERVICE
from spendsense_shared.db import create_engine, insert_all

SCHEMA = "insert_all_test"
metadata = MetaData(schema=SCHEMA)
items = Table(
    "items",
    metadata,
    Column("user_id", String(32), primary_key=True),
    Column("window", String(8), primary_key=True),
    Column("as_of", Date),
    Column("flag", Boolean),
    Column("values", JSONB, nullable=False),
    Column("matched", JSON),
)
tagged = Table("tagged", metadata, Column("id", String, primary_key=True), Column("tags", ARRAY(String)))

ROWS: list[dict[str, Any]] = [
    {
        "user_id": "u1",
        "window": "30d",
        "as_of": date(2026, 10, 31),
        "flag": True,
        "values": {"credit": {"utilization": 0.4999999999999999}, "cards": []},
        "matched": [{"id": "saver", "criteria": ["a", "b"]}],
    },
    {
        "user_id": "u1",
        "window": "180d",
        "as_of": None,
        "flag": None,
        "values": [1, "Café ☕", None],
        "matched": [],
    },
    {
        "user_id": "u2",
        "window": "30d",
        "as_of": date(1999, 1, 1),
        "flag": False,
        "values": {},
        "matched": None,
    },
]


@pytest.fixture
async def engine(settings_for):  # type: ignore[no-untyped-def]
    engine = create_engine(settings_for(SERVICE), schema=SCHEMA)
    async with engine.begin() as conn:
        await conn.execute(text(f"DROP SCHEMA IF EXISTS {SCHEMA} CASCADE"))
        await conn.execute(text(f"CREATE SCHEMA {SCHEMA}"))
        await conn.run_sync(metadata.create_all)
    try:
        yield engine
    finally:
        async with engine.begin() as conn:
            await conn.execute(text(f"DROP SCHEMA {SCHEMA} CASCADE"))
        await engine.dispose()


async def _stored(engine: Any) -> list[dict[str, Any]]:
    async with engine.connect() as conn:
        rows = await conn.execute(select(items).order_by(items.c.user_id, items.c.window))
        return [dict(row._mapping) for row in rows]


def _by_key(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return sorted(rows, key=lambda r: (r["user_id"], r["window"]))


async def test_the_rows_stored_are_the_rows_given_and_replace_replaces(engine) -> None:  # type: ignore[no-untyped-def]
    async with engine.begin() as conn:
        await conn.execute(insert_all(items, ROWS))
    assert await _stored(engine) == _by_key(ROWS)

    changed = [{**ROWS[0], "flag": False, "values": {"new": [1, 2]}}, {**ROWS[2], "window": "180d"}]
    async with engine.begin() as conn:
        await conn.execute(insert_all(items, changed, replace=True))
    assert await _stored(engine) == _by_key([changed[0], ROWS[1], ROWS[2], changed[1]])

    with pytest.raises(IntegrityError):
        async with engine.begin() as conn:
            await conn.execute(insert_all(items, [ROWS[1]]))


def test_an_array_column_is_refused() -> None:
    with pytest.raises(ValueError, match=r"tagged\.tags is an array"):
        insert_all(tagged, [{"id": "a", "tags": ["x", "y"]}])
