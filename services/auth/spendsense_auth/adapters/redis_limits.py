"""Rate limits and the revoked-token list in Redis."""

from __future__ import annotations

import hashlib

from spendsense_auth.domain.accounts import AuthError
from spendsense_auth.handlers.ports import RateLimiter, RevokedTokens
from spendsense_shared.cache import Cache
from spendsense_shared.logging import get_logger
from spendsense_shared.revocation import RedisRevocationList

log = get_logger(__name__)


class RedisRateLimiter(RateLimiter):
    """Fixed windows: INCR a key per scope and key (hashed: no emails or addresses in Redis), EXPIRE it
    with the window on its first hit. Fails open when Redis fails (logged): sign-in stays possible."""

    def __init__(self, cache: Cache):
        self.cache = cache

    async def hit(self, scope: str, key: str, limit: int, window_s: int) -> None:
        name = self.cache.key("ratelimit", scope, hashlib.sha256(key.encode()).hexdigest()[:32])
        try:
            async with self.cache.client.pipeline(transaction=True) as pipe:
                pipe.incr(name)
                pipe.ttl(name)
                count, ttl = await pipe.execute()
            if ttl < 0:  # first hit (or a key left without expiry): start the window
                await self.cache.client.expire(name, window_s)
                ttl = window_s
        except Exception as exc:
            log.warning("rate_limit_unavailable", scope=scope, error=str(exc))
            return
        if int(count) > limit:
            log.warning("rate_limited", scope=scope, retry_after_s=int(ttl))
            raise AuthError(
                429, "rate_limited", "too many attempts; try again later", retry_after_s=max(1, int(ttl))
            )


class RedisRevokedTokens(RevokedTokens):
    def __init__(self, revocations: RedisRevocationList):
        self.revocations = revocations

    async def revoke(self, jti: str, ttl_s: int) -> None:
        await self.revocations.revoke(jti, ttl_s)

    async def revoke_session(self, session_id: str, ttl_s: int) -> None:
        await self.revocations.revoke_session(session_id, ttl_s)

    async def is_revoked(self, jti: str, session_id: str | None = None) -> bool:
        return await self.revocations.is_revoked(jti, session_id)
