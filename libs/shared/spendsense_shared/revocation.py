"""The list of revoked access tokens, by ``jti``, in Redis under one global key space every service
reads (``spendsense:{env}:revoked-jti:{jti}``, not a service's own prefix): the auth service writes it
at logout, and every service's token verifier refuses what it holds."""

from __future__ import annotations

import redis.asyncio as aioredis


class RedisRevocationList:
    def __init__(self, client: aioredis.Redis, env: str):
        self.client = client
        self.prefix = f"spendsense:{env}:revoked-jti:"

    def key(self, jti: str) -> str:
        return self.prefix + jti

    async def revoke(self, jti: str, ttl_s: int) -> None:
        """Listed for ``ttl_s`` seconds: until the token would have expired anyway."""
        await self.client.set(self.key(jti), b"1", ex=max(1, int(ttl_s)))

    async def is_revoked(self, jti: str) -> bool:
        return bool(await self.client.exists(self.key(jti)))
