"""Normalized Parquet snapshots in the data bucket: ``users/{user_id}/uploads/{upload_id}/{table}.parquet``.

Each snapshot is the user's whole normalized dataset after the upload was merged, so the features
service analyses the user's full history, not just the latest file.
"""

from __future__ import annotations

import asyncio

import pyarrow as pa
import pyarrow.compute as pc

from spendsense_shared.blobs import BlobStore
from spendsense_shared.dataset import snapshot_key, to_parquet


async def write_snapshots(
    store: BlobStore, upload_id: str, tables: dict[str, pa.Table], user_ids: list[str]
) -> list[str]:
    """Write one Parquet file per user and table; returns the object keys (within the bucket)."""

    def encode() -> list[tuple[str, bytes]]:
        return [
            (
                snapshot_key(user_id, upload_id, name),
                to_parquet(table.filter(pc.equal(table["user_id"], user_id))),
            )
            for user_id in user_ids
            for name, table in tables.items()
        ]

    items = await asyncio.to_thread(encode)
    return await store.put_many(items, "application/vnd.apache.parquet")
