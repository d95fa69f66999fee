"""Fixed-window request counting in Redis, shared by every process of a service (and by the auth
service's sign-in limits' way of counting: a key per scope and client, expiring with its window)."""

from __future__ import annotations

import hashlib

from spendsense_shared.cache import Cache
from spendsense_shared.logging import get_logger

log = get_logger(__name__)


class FixedWindowLimiter:
    """``await hit(scope, key, limit, window_s)``: None while ``key`` is within ``limit`` hits in the
    current window, else the seconds until the window ends. Keys are hashed (no addresses or tokens in
    Redis). Fails open when Redis fails (logged): an outage of the limiter is not an outage of the API."""

    def __init__(self, cache: Cache):
        self.cache = cache

    async def hit(self, scope: str, key: str, limit: int, window_s: int) -> int | None:
        name = self.cache.key("ratelimit", scope, hashlib.sha256(key.encode()).hexdigest()[:32])
        try:
            async with self.cache.client.pipeline(transaction=True) as pipe:
                pipe.set(name, 0, ex=window_s, nx=True)  # the first hit of a window starts it
                pipe.incr(name)
                pipe.ttl(name)
                _, count, ttl = await pipe.execute()
        except Exception as exc:
            log.warning("rate_limit_unavailable", scope=scope, error=type(exc).__name__)
            return None
        if int(count) <= limit:
            return None
        return max(1, int(ttl) if int(ttl) > 0 else window_s)
