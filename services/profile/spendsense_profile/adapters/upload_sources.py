"""Received uploads' bytes in the data bucket (S3), streamed in and out without holding them in memory.

``put`` sends the chunks as they arrive: a body smaller than one part is a single PUT; a larger one is an
S3 multipart upload whose parts go out while the next ones are still being read (at most
``parts_in_flight`` at once, so memory stays near ``parts_in_flight + 1`` parts). When the chunks raise
(too large, a blank body, the client went away) the multipart upload is aborted: nothing is kept.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from spendsense_shared.storage import ObjectStore

PART_BYTES = 8 * 1024 * 1024  # S3's minimum is 5 MiB (except the last part)
DOWNLOAD_CHUNK = 1024 * 1024


class S3UploadSources:
    def __init__(self, store: ObjectStore, part_bytes: int = PART_BYTES, parts_in_flight: int = 2):
        self.store = store
        self.bucket = store.bucket
        self.part_bytes = part_bytes
        self.parts_in_flight = parts_in_flight

    async def put(self, name: str, chunks: AsyncIterator[bytes], content_type: str | None) -> int:
        key = self.store.key(name)
        extra = {"ContentType": content_type or "application/octet-stream", "ServerSideEncryption": "AES256"}
        buffer = bytearray()
        size = 0
        async with self.store.aws.client("s3") as s3:
            multipart: _Multipart | None = None
            try:
                async for chunk in chunks:
                    size += len(chunk)
                    buffer += chunk
                    if len(buffer) >= self.part_bytes:
                        if multipart is None:
                            multipart = await _Multipart.start(
                                s3, self.bucket, key, extra, self.parts_in_flight
                            )
                        await multipart.send(bytes(buffer))
                        buffer.clear()
                if multipart is None:
                    await s3.put_object(Bucket=self.bucket, Key=key, Body=bytes(buffer), **extra)
                else:
                    if buffer:
                        await multipart.send(bytes(buffer))
                    await multipart.complete()
            except BaseException:
                if multipart is not None:
                    await asyncio.shield(multipart.abort())
                raise
        return size

    async def download(self, name: str, path: Path) -> int:
        """The object into a local file; its size."""
        size = 0
        async with self.store.aws.client("s3") as s3:
            response = await s3.get_object(Bucket=self.bucket, Key=self.store.key(name))
            body = response["Body"]
            try:
                with path.open("wb") as file:
                    async for chunk in body.iter_chunks(DOWNLOAD_CHUNK):
                        file.write(chunk)
                        size += len(chunk)
            finally:
                body.close()
        return size

    async def delete(self, name: str) -> None:
        async with self.store.aws.client("s3") as s3:
            await s3.delete_object(Bucket=self.bucket, Key=self.store.key(name))


class _Multipart:
    """One S3 multipart upload: parts sent in the background, a bounded number at a time."""

    def __init__(self, s3: Any, bucket: str, key: str, upload_id: str, in_flight: int):
        self.s3, self.bucket, self.key, self.upload_id = s3, bucket, key, upload_id
        self.slots = asyncio.Semaphore(in_flight)
        self.parts: list[asyncio.Task[dict[str, Any]]] = []

    @classmethod
    async def start(cls, s3: Any, bucket: str, key: str, extra: dict[str, str], in_flight: int) -> _Multipart:
        created = await s3.create_multipart_upload(Bucket=bucket, Key=key, **extra)
        return cls(s3, bucket, key, created["UploadId"], in_flight)

    async def send(self, body: bytes) -> None:
        await self.slots.acquire()  # waits while ``in_flight`` parts are on their way
        for part in self.parts:
            if part.done() and part.exception() is not None:
                self.slots.release()
                raise part.exception()  # type: ignore[misc]
        number = len(self.parts) + 1
        self.parts.append(asyncio.create_task(self._part(number, body)))

    async def _part(self, number: int, body: bytes) -> dict[str, Any]:
        try:
            sent = await self.s3.upload_part(
                Bucket=self.bucket, Key=self.key, UploadId=self.upload_id, PartNumber=number, Body=body
            )
            return {"PartNumber": number, "ETag": sent["ETag"]}
        finally:
            self.slots.release()

    async def complete(self) -> None:
        parts = await asyncio.gather(*self.parts)
        await self.s3.complete_multipart_upload(
            Bucket=self.bucket, Key=self.key, UploadId=self.upload_id, MultipartUpload={"Parts": list(parts)}
        )

    async def abort(self) -> None:
        for part in self.parts:
            part.cancel()
        await asyncio.gather(*self.parts, return_exceptions=True)
        with contextlib.suppress(Exception):
            await self.s3.abort_multipart_upload(Bucket=self.bucket, Key=self.key, UploadId=self.upload_id)
