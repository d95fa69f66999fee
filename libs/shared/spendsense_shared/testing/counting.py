"""A ``BlobStore`` wrapper for tests: the real store underneath (the S3 adapter on the emulator), with
every read and write made through it recorded, so a test can count the requests a handler makes."""

from __future__ import annotations

from spendsense_shared.blobs import BlobStore


class CountingStore:
    def __init__(self, store: BlobStore) -> None:
        self.store, self.bucket = store, store.bucket
        self.puts: list[list[str]] = []  # the names of each put_many
        self.reads: list[list[str]] = []  # the names of each get_many, or [name] of a get

    async def put_many(self, items: list[tuple[str, bytes]], content_type: str) -> list[str]:
        self.puts.append([name for name, _ in items])
        return await self.store.put_many(items, content_type)

    async def get_many(self, names: list[str]) -> list[bytes]:
        self.reads.append(list(names))
        return await self.store.get_many(names)

    async def get(self, name: str) -> bytes:
        self.reads.append([name])
        return await self.store.get(name)

    async def delete_prefix(self, name_prefix: str) -> int:
        return await self.store.delete_prefix(name_prefix)
