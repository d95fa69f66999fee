"""In-memory stand-ins for the phone ports (code store, SMS sender, rate limiter) on a fake clock, for
the phone handler unit tests. The Redis and SNS adapters they stand in for have integration tests."""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import dataclass, field

from spendsense_auth.domain.accounts import AuthError
from spendsense_auth.domain.phone import CheckResult, CodeCheck
from spendsense_auth.handlers.phone import PhoneCodeStore, SmsDeliveryError, SmsSender
from spendsense_auth.handlers.ports import RateLimiter


class ManualClock:
    """Seconds since an arbitrary start; tests move it forward."""

    def __init__(self) -> None:
        self.t = 1_000_000.0

    def __call__(self) -> float:
        return self.t

    def advance(self, seconds: float) -> None:
        self.t += seconds


@dataclass
class _Code:
    digest: str
    attempts: int
    expires_at: float


class InMemoryPhoneCodeStore(PhoneCodeStore):
    """The Redis store's semantics: a burnt code (digest "") refuses every attempt until it expires."""

    def __init__(self, clock: ManualClock) -> None:
        self.clock = clock
        self.codes: dict[str, _Code] = {}

    def _live(self, phone: str) -> _Code | None:
        code = self.codes.get(phone)
        if code is not None and code.expires_at <= self.clock():
            del self.codes[phone]
            return None
        return code

    async def put(self, phone: str, digest: str, ttl_s: int) -> None:
        self.codes[phone] = _Code(digest, 0, self.clock() + ttl_s)

    async def check(self, phone: str, digest: str, max_attempts: int) -> CheckResult:
        code = self._live(phone)
        if code is None:
            return CheckResult(CodeCheck.missing)
        if code.digest == "":
            return CheckResult(CodeCheck.locked)
        code.attempts += 1
        if code.attempts > max_attempts:
            code.digest = ""
            return CheckResult(CodeCheck.locked)
        if digest and digest == code.digest:
            del self.codes[phone]
            return CheckResult(CodeCheck.ok, max_attempts - code.attempts)
        return CheckResult(CodeCheck.mismatch, max_attempts - code.attempts)

    async def discard(self, phone: str) -> None:
        self.codes.pop(phone, None)


@dataclass
class FakeSmsSender(SmsSender):
    sent: list[tuple[str, str]] = field(default_factory=list)
    failing: bool = False

    async def send(self, phone: str, message: str) -> None:
        if self.failing:
            raise SmsDeliveryError("provider down")
        self.sent.append((phone, message))

    def last_code(self, phone: str) -> str:
        message = next(m for p, m in reversed(self.sent) if p == phone)
        return message.split("code is ", 1)[1][:6]

    def count(self, phone: str) -> int:
        return sum(1 for p, _ in self.sent if p == phone)


class SlidingWindowRateLimiter(RateLimiter):
    """Counts the accepted hits in a sliding window on the manual clock."""

    def __init__(self, clock: ManualClock) -> None:
        self.clock = clock
        self.hits: dict[tuple[str, str], list[float]] = defaultdict(list)

    async def hit(self, scope: str, key: str, limit: int, window_s: int) -> None:
        now = self.clock()
        recent = [t for t in self.hits[(scope, key)] if t > now - window_s]
        if len(recent) >= limit:
            self.hits[(scope, key)] = recent
            retry = math.ceil(recent[0] + window_s - now)
            raise AuthError(429, "rate_limited", f"too many requests ({scope})", retry_after_s=max(retry, 1))
        self.hits[(scope, key)] = [*recent, now]
