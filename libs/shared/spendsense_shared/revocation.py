"""The list of revoked access tokens in Redis, under one global key space every service reads
(``spendsense:{env}:revoked-…``, not a service's own prefix): by ``jti`` (the token presented at logout)
and by session (``sid``: every access token of a logged-out session, or of a refresh-token family that
was revoked because a spent refresh token came back). The auth service writes it; every service's token
verifier refuses what it holds."""

from __future__ import annotations

import redis.asyncio as aioredis


class RedisRevocationList:
    def __init__(self, client: aioredis.Redis, env: str):
        self.client = client
        self.prefix = f"spendsense:{env}:revoked-"

    def key(self, jti: str) -> str:
        return f"{self.prefix}jti:{jti}"

    def session_key(self, session_id: str) -> str:
        return f"{self.prefix}sid:{session_id}"

    async def revoke(self, jti: str, ttl_s: int) -> None:
        """Listed for ``ttl_s`` seconds: until the token would have expired anyway."""
        await self.client.set(self.key(jti), b"1", ex=max(1, int(ttl_s)))

    async def revoke_session(self, session_id: str, ttl_s: int) -> None:
        """Every access token of the session, for ``ttl_s`` seconds (the longest an access token lives)."""
        await self.client.set(self.session_key(session_id), b"1", ex=max(1, int(ttl_s)))

    async def is_revoked(self, jti: str, session_id: str | None = None) -> bool:
        keys = [self.key(jti)] + ([self.session_key(session_id)] if session_id else [])
        return bool(await self.client.exists(*keys))  # one round trip for both
