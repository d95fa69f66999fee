"""Normalized Parquet snapshots in the data bucket, one object per table for each chunk of an upload's
users: ``uploads/{upload_id}/snapshots/{chunk}/{table}.parquet`` (``dataset.chunk_snapshot_key``).

Each snapshot holds the users' whole normalized datasets after the upload was merged, so the features
service analyses a user's full history, not just the latest file. The chunks are those of the
``upload.ingested`` events (:func:`~spendsense_profile.domain.uploads.user_chunks`): features reads one
chunk's three objects per event. One object per user and table (three PUTs a user: 4,506 for a batch of
1,502 users) took a minute against the emulator; a chunk of 400 users is three PUTs.

A chunk's keys name no user, so erasing a user rewrites the chunks holding their rows without them
(:func:`remove_user`) rather than deleting objects by a prefix naming them.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from spendsense_shared.blobs import BlobStore, object_missing
from spendsense_shared.dataset import TABLES, chunk_snapshot_key, from_parquet, table_of_key, to_parquet

PARQUET = "application/vnd.apache.parquet"


def as_stored(tables: Mapping[str, pa.Table]) -> dict[str, pa.Table]:
    """An upload's tables as ``NormalizedData.snapshot`` reads them back when they are all that is stored
    of their users: every table of the normalized schema, in its columns and types. (Rows cross to
    PostgreSQL and back as CSV, and both ends write a float's shortest exact form, so the values are the
    same; an integration test compares the two.) Reading back half a million rows took ~1.5 s. The rows
    stay in the upload's order: each user's in the order a sort by user id would keep them (a stable
    sort), the users as the upload lists them, which the analysis does not depend on (sorting them cost
    0.4 s of CPU for 500,000 transactions, during the merge)."""
    stored = {}
    for name, schema in TABLES.items():
        table = tables.get(name)
        stored[name] = schema.empty_table() if table is None else table.select(schema.names).cast(schema)
    return stored


async def write_snapshots(
    store: BlobStore,
    upload_id: str,
    tables: dict[str, pa.Table],
    chunks: list[list[str]],
    names: list[str],
    written: Callable[[int, list[str]], Awaitable[None]] | None = None,
) -> list[list[str]]:
    """Write one Parquet object per table for each chunk of users (``names[i]`` names ``chunks[i]`` in the
    keys), a chunk at a time; returns each chunk's object keys (within the bucket), in ``chunks`` order.
    ``written(i, keys)``, if given, is awaited as soon as chunk ``i`` is written."""

    parts = await asyncio.to_thread(lambda: {n: by_chunk(t, chunks) for n, t in tables.items()})

    def encode(index: int) -> list[tuple[str, bytes]]:
        return [
            (chunk_snapshot_key(upload_id, names[index], table_name), to_parquet(part[index]))
            for table_name, part in parts.items()
        ]

    found = []
    for index in range(len(chunks)):
        found.append(await store.put_many(await asyncio.to_thread(encode, index), PARQUET))
        if written is not None:
            await written(index, found[-1])
    return found


def by_chunk(table: pa.Table, chunks: list[list[str]]) -> list[pa.Table]:
    """The rows of each chunk's users (in ``chunks`` order; rows of no chunk's user left out), each chunk's
    in the table's order: one pass over the table (a filter per chunk took seven for an upload of 1,502
    users), and no copy where the chunks' rows are in order already (0.1 s of CPU for 513,061
    transactions)."""
    if not chunks:
        return []
    users = [user for chunk in chunks for user in chunk]
    chunk_of_user = np.repeat(np.arange(len(chunks)), [len(chunk) for chunk in chunks])
    position = pc.index_in(table["user_id"], value_set=pa.array(users, pa.string()))
    found = position.is_valid().to_numpy(zero_copy_only=False)
    rows = np.flatnonzero(found)
    chunk_of_row = chunk_of_user[position.to_numpy(zero_copy_only=False)[found].astype(np.int64)]
    if len(rows) == len(table) and bool(np.all(chunk_of_row[1:] >= chunk_of_row[:-1])):
        grouped = table  # each chunk's rows together already (an upload listing its users in order): slices
    else:
        grouped = table.take(pa.array(rows[np.argsort(chunk_of_row, kind="stable")]))
    ends = np.cumsum(np.bincount(chunk_of_row, minlength=len(chunks)))
    return [grouped.slice(start, end - start) for start, end in zip([0, *ends[:-1]], ends, strict=True)]


async def remove_user(store: BlobStore, keys: list[str], user_id: str) -> int:
    """Rewrite each of these chunk objects that holds rows of ``user_id`` without them; how many were
    rewritten. (``keys`` as :func:`write_snapshots` returned them; an object already gone is skipped.)"""
    found = await _existing(store, [object_name(k) for k in keys])

    def without() -> list[tuple[str, bytes]]:
        rewritten = []
        for name, body in found:
            table = from_parquet(body)
            theirs = pc.equal(table["user_id"], user_id)
            if pc.any(theirs).as_py():
                table_of_key(name)  # only snapshots are rewritten
                rewritten.append((name, to_parquet(table.filter(pc.invert(theirs)))))
        return rewritten

    items = await asyncio.to_thread(without)
    if items:
        await store.put_many(items, PARQUET)
    return len(items)


async def _existing(store: BlobStore, names: list[str]) -> list[tuple[str, bytes]]:
    """(name, body) of each object that exists: all in one batch, one by one only if some are gone (the
    emulator restarted; the reconciler writes what a user still needs again)."""
    try:
        return list(zip(names, await store.get_many(names), strict=True))
    except Exception as exc:
        if not object_missing(exc):
            raise
    found = []
    for name in names:
        try:
            found.append((name, await store.get(name)))
        except Exception as exc:
            if not object_missing(exc):
                raise
    return found


def object_name(key: str) -> str:
    """A snapshot's key as returned by the store (``profile/uploads/…``) → its name under the profile's
    prefix (``uploads/…``), as the store's reads and writes take it."""
    _, found, rest = f"/{key}".partition("/uploads/")
    if not found:
        raise ValueError(f"{key}: not an upload's snapshot")
    return f"uploads/{rest}"
