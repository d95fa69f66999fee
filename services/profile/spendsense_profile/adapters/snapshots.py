"""Normalized Parquet snapshots in S3: ``users/{user_id}/uploads/{upload_id}/{table}.parquet``.

Each snapshot is the user's whole normalized dataset after the upload was merged, so the features
service analyses the user's full history, not just the latest file.
"""

from __future__ import annotations

import asyncio

import pyarrow as pa
import pyarrow.compute as pc

from spendsense_shared.dataset import snapshot_key, to_parquet
from spendsense_shared.storage import ObjectStore

PARALLEL_PUTS = 16


async def write_snapshots(
    store: ObjectStore, upload_id: str, tables: dict[str, pa.Table], user_ids: list[str]
) -> list[str]:
    """Write one Parquet file per user and table; returns the object keys (relative to the store)."""
    limit = asyncio.Semaphore(PARALLEL_PUTS)

    async def put(user_id: str, name: str, table: pa.Table) -> str:
        body = await asyncio.to_thread(to_parquet, table.filter(pc.equal(table["user_id"], user_id)))
        async with limit:
            return await store.put(
                snapshot_key(user_id, upload_id, name), body, "application/vnd.apache.parquet"
            )

    return list(
        await asyncio.gather(*(put(u, name, table) for u in user_ids for name, table in tables.items()))
    )
