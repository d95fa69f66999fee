"""Outstanding phone codes in Redis: one hash per number (``digest``, ``attempts``) that expires with
the code. Each attempt is one Lua script, so counting, burning and consuming are atomic across replicas."""

from __future__ import annotations

import hashlib
from typing import Any

from spendsense_auth.domain.phone import CheckResult, CodeCheck
from spendsense_auth.handlers.phone import PhoneCodeStore
from spendsense_shared.cache import Cache

# KEYS[1] the number's code; ARGV[1] the attempt's digest, ARGV[2] the attempts a code allows.
# An empty stored digest marks a burnt code: it stays (refusing every attempt) until it expires or a
# new code replaces it.
_CHECK = """
local stored = redis.call('HGET', KEYS[1], 'digest')
if not stored then return {'missing', 0} end
if stored == '' then return {'locked', 0} end
local attempts = redis.call('HINCRBY', KEYS[1], 'attempts', 1)
local allowed = tonumber(ARGV[2])
if attempts > allowed then
  redis.call('HSET', KEYS[1], 'digest', '')
  return {'locked', 0}
end
if ARGV[1] ~= '' and stored == ARGV[1] then
  redis.call('DEL', KEYS[1])
  return {'ok', allowed - attempts}
end
return {'mismatch', allowed - attempts}
"""


class RedisPhoneCodeStore(PhoneCodeStore):
    def __init__(self, cache: Cache):
        self.cache = cache
        self._check: Any = cache.client.register_script(_CHECK)

    def _key(self, phone: str) -> str:
        return self.cache.key("phone", "verify", phone)

    async def put(self, phone: str, digest: str, ttl_s: int) -> None:
        key = self._key(phone)
        async with self.cache.client.pipeline(transaction=True) as pipe:
            pipe.delete(key)
            pipe.hset(key, mapping={"digest": digest, "attempts": 0})
            pipe.expire(key, ttl_s)
            await pipe.execute()

    async def check(self, phone: str, digest: str, max_attempts: int) -> CheckResult:
        outcome, left = await self._check(keys=[self._key(phone)], args=[digest, max_attempts])
        name = outcome.decode() if isinstance(outcome, bytes) else str(outcome)
        return CheckResult(CodeCheck(name), int(left))

    async def discard(self, phone: str) -> None:
        await self.cache.client.delete(self._key(phone))


def code_secret(configured: str | None, signing_key_pem: bytes) -> bytes:
    """The HMAC key of the code digests: the configured secret, else one derived from the JWT signing
    key (shared by every replica, never stored anywhere else)."""
    if configured:
        return configured.encode()
    return hashlib.sha256(b"spendsense-auth phone codes\0" + signing_key_pem).digest()
