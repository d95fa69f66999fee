"""The ports the auth handlers work through (implemented in ``adapters``, faked in the unit tests)."""

from __future__ import annotations

import abc
from datetime import UTC, datetime

from spendsense_auth.domain.accounts import TokenPair, User


class Clock(abc.ABC):
    @abc.abstractmethod
    def now(self) -> datetime:
        """The current time, timezone-aware (UTC)."""


class SystemClock(Clock):
    def now(self) -> datetime:
        return datetime.now(UTC)


class TokenIssuer(abc.ABC):
    """Mints an access JWT (RS256, with ``sid`` = the refresh family) and an opaque refresh token.
    Storing the refresh token's hash is the handler's business (``handlers.sessions.start_session``)."""

    clock: Clock
    access_ttl_s: int
    refresh_ttl_s: int

    @abc.abstractmethod
    def issue(self, user: User, family_id: str | None = None) -> TokenPair:
        """A new pair for ``user``; the access token names ``family_id`` (its session) when given."""


class PasswordHasher(abc.ABC):
    """bcrypt (cost 12) off the event loop. ``verify`` with ``hashed=None`` checks against a dummy hash,
    so an unknown account costs the same time as a wrong password, and answers False."""

    @abc.abstractmethod
    async def hash(self, password: str) -> str: ...

    @abc.abstractmethod
    async def verify(self, password: str, hashed: str | None) -> bool: ...


class RevokedTokens(abc.ABC):
    """Access tokens revoked before they expire, by ``jti`` (every service's verifier reads the list)."""

    @abc.abstractmethod
    async def revoke(self, jti: str, ttl_s: int) -> None:
        """Refuse ``jti`` for ``ttl_s`` seconds (until the token would have expired anyway)."""

    @abc.abstractmethod
    async def revoke_session(self, session_id: str, ttl_s: int) -> None:
        """Refuse every access token of the session (its ``sid``) for ``ttl_s`` seconds."""

    @abc.abstractmethod
    async def is_revoked(self, jti: str, session_id: str | None = None) -> bool: ...


class RateLimiter(abc.ABC):
    @abc.abstractmethod
    async def hit(self, scope: str, key: str, limit: int, window_s: int) -> None:
        """Count one attempt of ``key`` in ``scope``; raises ``AuthError(429, "rate_limited", ...,
        retry_after_s=...)`` when more than ``limit`` fall in the window of ``window_s`` seconds."""
