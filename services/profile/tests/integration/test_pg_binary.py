"""Rows COPYed into PostgreSQL in its binary format (``pg_binary``, the merge's way in) are stored exactly
as the CSV they replaced stored them: generated tables of every data table's schema (text in any script,
empty strings and nulls, floats to the last digit, negative zero, dates far apart, flags), through a
real server, in one piece and in several."""

from __future__ import annotations

import asyncio
import io
import os
from datetime import date
from typing import Any

import asyncpg
import pyarrow as pa
import pyarrow.csv as pacsv
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import MetaData
from sqlalchemy.schema import CreateTable

from spendsense_profile.adapters import data_store, pg_binary
from spendsense_profile.adapters.orm import DATA_TABLES
from spendsense_profile.bootstrap import SERVICE
from spendsense_shared.dataset import TABLES

SCHEMA = f"binary_copy_{os.getpid()}"  # tests run side by side in several processes
TEXT = st.text(
    st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00"), max_size=8
)  # the narrowest column: varchar(8)
VALUES: dict[pa.DataType, st.SearchStrategy[Any]] = {
    pa.string(): st.one_of(TEXT, st.sampled_from(["", "Café ☕", "a,b", '"q"', "a\nb"])),
    pa.float64(): st.one_of(
        st.floats(allow_nan=False, allow_infinity=False),
        st.sampled_from([-0.0, 0.1 + 0.2, 1e-7, 123456789.12345679, 1.5e300]),
    ),
    pa.date32(): st.dates(date(1900, 1, 1), date(2199, 12, 31)),
    pa.bool_(): st.booleans(),
}
NOT_NULL = {"account_id", "date", "amount", "pending"}  # the tables' NOT NULL columns besides the keys


def _reference_csv(data: pa.Table, schema: pa.Schema, upload_id: str) -> bytes:
    """How the merge wrote its rows before binary COPY: every value quoted, a null empty and unquoted."""
    rows = data.select(schema.names).cast(schema)
    rows = rows.append_column("upload_id", pa.repeat(pa.scalar(upload_id), rows.num_rows))
    out = io.BytesIO()
    pacsv.write_csv(rows, out, pacsv.WriteOptions(include_header=False, quoting_style="all_valid"))
    return out.getvalue()


@st.composite
def tables(draw: Any, name: str) -> pa.Table:
    schema = TABLES[name]
    count = draw(st.integers(0, 12))
    columns: dict[str, list[Any]] = {"user_id": [f"u{i % 3}" for i in range(count)]}
    for field in schema:
        if field.name == "user_id":
            continue
        if field.name == schema.names[1]:  # the key: distinct per user
            columns[field.name] = [f"id-{i}" for i in range(count)]
            continue
        values = VALUES[field.type] if field.name in NOT_NULL else st.one_of(st.none(), VALUES[field.type])
        columns[field.name] = [draw(values) for _ in range(count)]
    return pa.table(columns, schema=schema)


@pytest.fixture
def dsn(settings_for: Any) -> str:
    url = settings_for(SERVICE).database_url.get_secret_value()
    return url.replace("postgresql+asyncpg://", "postgresql://")


async def _stored(dsn: str, name: str, copy: Any) -> list[tuple[Any, ...]]:
    connection = await asyncpg.connect(dsn)
    try:
        table = DATA_TABLES[name].to_metadata(MetaData(), schema=SCHEMA)
        await connection.execute(f"CREATE SCHEMA IF NOT EXISTS {SCHEMA}")
        await connection.execute(f"DROP TABLE IF EXISTS {SCHEMA}.{name}")
        await connection.execute(str(CreateTable(table).compile(dialect=_dialect())))
        columns = [*TABLES[name].names, "upload_id"]
        await copy(connection, columns)
        order = ", ".join(c.name for c in DATA_TABLES[name].primary_key.columns)
        rows = await connection.fetch(f"SELECT {', '.join(columns)} FROM {SCHEMA}.{name} ORDER BY {order}")  # noqa: S608
        await connection.execute(f"DROP SCHEMA {SCHEMA} CASCADE")
        return [tuple(row) for row in rows]
    finally:
        await connection.close()


def _dialect() -> Any:
    from sqlalchemy.dialects import postgresql

    return postgresql.dialect()


@pytest.mark.parametrize("name", sorted(TABLES))
def test_binary_copy_stores_what_csv_stored(dsn: str, name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    @settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
    @given(data=tables(name), piece_rows=st.sampled_from([1, 5, 100_000]))
    def check(data: pa.Table, piece_rows: int) -> None:
        monkeypatch.setattr(pg_binary, "ROWS_PER_PIECE", piece_rows)
        body = data_store.binary_rows(data, TABLES[name], "up_1")

        async def binary(connection: Any, columns: list[str]) -> None:
            await connection.copy_to_table(
                name, schema_name=SCHEMA, source=body(), columns=columns, format="binary"
            )

        async def csv(connection: Any, columns: list[str]) -> None:
            source = io.BytesIO(_reference_csv(data, TABLES[name], "up_1"))
            await connection.copy_to_table(
                name, schema_name=SCHEMA, source=source, columns=columns, format="csv"
            )

        stored = asyncio.run(_stored(dsn, name, binary))
        assert stored == asyncio.run(_stored(dsn, name, csv))
        assert len(stored) == data.num_rows

    check()


def test_the_body_is_the_format_postgresql_documents() -> None:
    table = pa.table(
        {
            "user_id": ["u1", None],
            "amount": [1.5, None],
            "day": [date(2000, 1, 2), None],
            "flag": [True, None],
        }
    )
    body = pg_binary.encode(table, ("up",), header=True, trailer=True)
    row = (
        b"\x00\x05"  # five fields
        b"\x00\x00\x00\x02u1"
        b"\x00\x00\x00\x08"
        + bytes.fromhex("3ff8000000000000")  # 1.5
        + b"\x00\x00\x00\x04\x00\x00\x00\x01"  # one day after 2000-01-01
        + b"\x00\x00\x00\x01\x01"
        + b"\x00\x00\x00\x02up"
    )
    nulls = b"\x00\x05" + b"\xff\xff\xff\xff" * 4 + b"\x00\x00\x00\x02up"
    assert body == pg_binary.HEADER + row + nulls + pg_binary.TRAILER
    assert bytes(8) == pg_binary.HEADER[-8:]  # no flags, no header extension
