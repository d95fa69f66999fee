"""S3 object storage (aioboto3) with a per-service key prefix."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Coroutine, Sequence
from typing import Any, TypeVar

from spendsense_shared.aws import Aws

T = TypeVar("T")


async def _all_or_first_error(calls: Sequence[Coroutine[Any, Any, T]]) -> list[T]:
    """Run ``calls`` concurrently; the results in order. On the first failure the others are cancelled
    and awaited before the error is raised: none is left running on a client its caller is closing (an
    S3 read left running on a closed client opened a session nobody closed, "Unclosed client session")."""
    tasks = [asyncio.ensure_future(call) for call in calls]
    try:
        return list(await asyncio.gather(*tasks))
    finally:
        unfinished = [t for t in tasks if not t.done()]
        for task in unfinished:
            task.cancel()
        if unfinished:
            with contextlib.suppress(BaseException):
                await asyncio.gather(*unfinished, return_exceptions=True)


class ObjectStore:
    def __init__(self, aws: Aws, bucket: str, prefix: str):
        self.aws = aws
        self.bucket = bucket
        self.prefix = prefix.strip("/") + "/" if prefix.strip("/") else ""  # "" → keys used as given

    def key(self, name: str) -> str:
        return self.prefix + name.lstrip("/")

    async def put(self, name: str, body: bytes, content_type: str = "application/octet-stream") -> str:
        key = self.key(name)
        async with self.aws.client("s3") as s3:
            await s3.put_object(
                Bucket=self.bucket,
                Key=key,
                Body=body,
                ContentType=content_type,
                ServerSideEncryption="AES256",
            )
        return key

    async def put_many(
        self, items: list[tuple[str, bytes]], content_type: str, concurrency: int = 16
    ) -> list[str]:
        """Put many objects through one client (creating a client costs far more than a small PUT)."""
        limit = asyncio.Semaphore(concurrency)
        async with self.aws.client("s3") as s3:

            async def put(name: str, body: bytes) -> str:
                async with limit:
                    await s3.put_object(
                        Bucket=self.bucket,
                        Key=self.key(name),
                        Body=body,
                        ContentType=content_type,
                        ServerSideEncryption="AES256",
                    )
                return self.key(name)

            return await _all_or_first_error([put(n, b) for n, b in items])

    async def get_many(self, names: list[str], concurrency: int = 16) -> list[bytes]:
        limit = asyncio.Semaphore(concurrency)
        async with self.aws.client("s3") as s3:

            async def get(name: str) -> bytes:
                async with limit:
                    response = await s3.get_object(Bucket=self.bucket, Key=self.key(name))
                    async with response["Body"] as stream:
                        data: bytes = await stream.read()
                return data

            return await _all_or_first_error([get(n) for n in names])

    async def get(self, name: str) -> bytes:
        async with self.aws.client("s3") as s3:
            response = await s3.get_object(Bucket=self.bucket, Key=self.key(name))
            async with response["Body"] as stream:
                data: bytes = await stream.read()
        return data

    async def list(self, name_prefix: str = "") -> list[str]:
        keys: list[str] = []
        async with self.aws.client("s3") as s3:
            paginator = s3.get_paginator("list_objects_v2")
            async for page in paginator.paginate(Bucket=self.bucket, Prefix=self.key(name_prefix)):
                keys += [obj["Key"][len(self.prefix) :] for obj in page.get("Contents", [])]
        return keys

    async def delete_prefix(self, name_prefix: str) -> int:
        names = await self.list(name_prefix)
        async with self.aws.client("s3") as s3:
            for start in range(0, len(names), 1000):
                chunk = names[start : start + 1000]
                await s3.delete_objects(
                    Bucket=self.bucket, Delete={"Objects": [{"Key": self.key(n)} for n in chunk]}
                )
        return len(names)
