"""Normalized Parquet snapshots in the data bucket: ``users/{user_id}/uploads/{upload_id}/{table}.parquet``.

Each snapshot is the user's whole normalized dataset after the upload was merged, so the features
service analyses the user's full history, not just the latest file.
"""

from __future__ import annotations

import asyncio
from itertools import groupby

import pyarrow as pa
import pyarrow.compute as pc

from spendsense_shared.blobs import BlobStore
from spendsense_shared.dataset import snapshot_key, to_parquet


async def write_snapshots(
    store: BlobStore, upload_id: str, tables: dict[str, pa.Table], user_ids: list[str]
) -> list[str]:
    """Write one Parquet file per user and table; returns the object keys (within the bucket)."""

    def encode() -> list[tuple[str, bytes]]:
        per_user = {name: by_user(table) for name, table in tables.items()}
        empty = {name: table.slice(0, 0) for name, table in tables.items()}
        return [
            (snapshot_key(user_id, upload_id, name), to_parquet(per_user[name].get(user_id, empty[name])))
            for user_id in user_ids
            for name in tables
        ]

    items = await asyncio.to_thread(encode)
    return await store.put_many(items, "application/vnd.apache.parquet")


def by_user(table: pa.Table) -> dict[str, pa.Table]:
    """Each user's rows, as zero-copy slices of the table sorted by user: one pass over the rows, not
    one filter of the whole table per user (which made a 3,000-user batch take minutes)."""
    ordered = table if _sorted_by_user(table) else table.sort_by("user_id")
    slices: dict[str, pa.Table] = {}
    offset = 0
    for user_id, rows in groupby(ordered.column("user_id").to_pylist()):
        length = sum(1 for _ in rows)
        slices[user_id] = ordered.slice(offset, length)
        offset += length
    return slices


def _sorted_by_user(table: pa.Table) -> bool:
    users = table.column("user_id")
    if len(users) < 2:
        return True
    return bool(pc.all(pc.less_equal(users.slice(0, len(users) - 1), users.slice(1))).as_py())
