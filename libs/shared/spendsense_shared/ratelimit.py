"""Fixed-window request counting in Redis, shared by every process of a service (and by the auth
service's sign-in limits' way of counting: a key per scope and client, expiring with its window)."""

from __future__ import annotations

import hashlib

from spendsense_shared.cache import Cache
from spendsense_shared.logging import get_logger

log = get_logger(__name__)

# One round trip per request: count the hit, start the window on its first hit, and answer 0 (within the
# limit) or the seconds left in the window. A script runs whole, so no key is ever left without its expiry.
# The seconds left are rounded up from PTTL: TTL rounds to the nearest second, so a client that waited
# the Retry-After it was given could come back 0.4 s early, still in the window, and be told to wait a
# whole window more.
_HIT = """
local count = redis.call('INCR', KEYS[1])
if count == 1 then redis.call('EXPIRE', KEYS[1], ARGV[1]) end
if count <= tonumber(ARGV[2]) then return 0 end
local left_ms = redis.call('PTTL', KEYS[1])
if left_ms < 1 then return tonumber(ARGV[1]) end
return math.ceil(left_ms / 1000)
"""


class FixedWindowLimiter:
    """``await hit(scope, key, limit, window_s)``: None while ``key`` is within ``limit`` hits in the
    current window, else the seconds until the window ends. Keys are hashed (no addresses or tokens in
    Redis). Fails open when Redis fails (logged): an outage of the limiter is not an outage of the API."""

    def __init__(self, cache: Cache):
        self.cache = cache
        self._hit = cache.client.register_script(_HIT)

    async def hit(self, scope: str, key: str, limit: int, window_s: int) -> int | None:
        name = self.cache.key("ratelimit", scope, hashlib.sha256(key.encode()).hexdigest()[:32])
        try:
            wait_s = int(await self._hit(keys=[name], args=[window_s, limit]))
        except Exception as exc:
            log.warning("rate_limit_unavailable", scope=scope, error=type(exc).__name__)
            return None
        return wait_s or None
