"""JSON(B) values go to PostgreSQL as ``orjson`` writes them and come back as they went, through a real
connection: nested values, text in any script, floats to the last digit, integer keys, and an integer
wider than 64 bits (which only the standard module encodes)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from sqlalchemy import JSON, Column, MetaData, String, Table, insert, select, text
from sqlalchemy.dialects.postgresql import JSONB

from spendsense_profile.bootstrap import SERVICE
from spendsense_shared.db import create_engine, json_text

VALUES: list[Any] = [
    {"signals": {"credit": {"utilization": 0.4999999999999999, "cards": []}}, "none": None},
    ["Café ☕", "日本語", "line\nbreak", "\u2028"],
    {"wide": 2**70 + 1, "negative": -(2**65) - 1},
    [1.5e-300, 0.1 + 0.2, 12345678901234567],
]


def test_json_text_is_orjson_with_the_standard_module_behind_it() -> None:
    assert json_text({"a": [1, 2.5, None]}) == '{"a":[1,2.5,null]}'
    assert json_text({1: "integer key"}) == '{"1":"integer key"}'
    assert json.loads(json_text({"wide": 2**70 + 1})) == {"wide": 2**70 + 1}


@pytest.fixture
def settings(settings_for):  # type: ignore[no-untyped-def]
    return settings_for(SERVICE)


@pytest.mark.parametrize("column_type", [JSONB, JSON])
async def test_values_come_back_as_they_went(settings, column_type) -> None:  # type: ignore[no-untyped-def]
    table = Table(
        f"json_roundtrip_{column_type.__name__.lower()}",
        MetaData(),
        Column("id", String, primary_key=True),
        Column("value", column_type),
    )
    engine = create_engine(settings, schema="json_columns_test")
    try:
        async with engine.begin() as conn:
            await conn.execute(text("CREATE SCHEMA IF NOT EXISTS json_columns_test"))
            await conn.execute(text(f"DROP TABLE IF EXISTS {table.name}"))
            await conn.run_sync(table.metadata.create_all)
            await conn.execute(insert(table), [{"id": str(i), "value": v} for i, v in enumerate(VALUES)])
            stored = {r.id: r.value for r in await conn.execute(select(table))}
            await conn.execute(text("DROP SCHEMA json_columns_test CASCADE"))
    finally:
        await engine.dispose()
    assert [stored[str(i)] for i in range(len(VALUES))] == VALUES
