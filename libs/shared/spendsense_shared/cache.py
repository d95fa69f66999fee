"""Async Redis with a per-service key prefix, so services never share keys by accident."""

from __future__ import annotations

from typing import Any

import redis.asyncio as aioredis


class Cache:
    def __init__(self, url: str, service: str, env: str):
        self.client: aioredis.Redis = aioredis.from_url(url, decode_responses=False, health_check_interval=30)
        self.prefix = f"spendsense:{env}:{service}:"

    def key(self, *parts: str) -> str:
        return self.prefix + ":".join(parts)

    async def get(self, *parts: str) -> bytes | None:
        value = await self.client.get(self.key(*parts))
        return value.encode() if isinstance(value, str) else value

    async def set(self, *parts: str, value: bytes | str, ttl_s: int | None = None) -> None:
        await self.client.set(self.key(*parts), value, ex=ttl_s)

    async def delete(self, *parts: str) -> int:
        return int(await self.client.delete(self.key(*parts)))

    async def ping(self) -> Any:
        return await self.client.ping()

    async def close(self) -> None:
        await self.client.aclose()
