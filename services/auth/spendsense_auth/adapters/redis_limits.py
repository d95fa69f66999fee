"""Rate limits and the revoked-token list in Redis."""

from __future__ import annotations

from spendsense_auth.domain.accounts import AuthError
from spendsense_auth.handlers.ports import RateLimiter, RevokedTokens
from spendsense_shared.cache import Cache
from spendsense_shared.logging import get_logger
from spendsense_shared.ratelimit import FixedWindowLimiter
from spendsense_shared.revocation import RedisRevocationList

log = get_logger(__name__)


class RedisRateLimiter(RateLimiter):
    """Fixed windows in Redis (the shared :class:`FixedWindowLimiter`, as every API's request limits):
    a key per scope and key (hashed: no emails or addresses in Redis), expiring with its window. Fails
    open when Redis fails (logged): sign-in stays possible."""

    def __init__(self, cache: Cache):
        self.cache = cache
        self.windows = FixedWindowLimiter(cache)

    async def hit(self, scope: str, key: str, limit: int, window_s: int) -> None:
        retry_after_s = await self.windows.hit(scope, key, limit, window_s)
        if retry_after_s is not None:
            log.warning("rate_limited", scope=scope, retry_after_s=retry_after_s)
            raise AuthError(
                429, "rate_limited", "too many attempts; try again later", retry_after_s=retry_after_s
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
