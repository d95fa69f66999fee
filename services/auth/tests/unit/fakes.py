"""In-memory repositories, unit of work and ports of the auth service, for handler unit tests that run
in milliseconds. The SQL, bcrypt, JWT and Redis adapters they stand in for have integration tests."""

from __future__ import annotations

import copy
import itertools
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

from spendsense_auth.domain.accounts import AuthError, Identity, Provider, RefreshSession, TokenPair, User
from spendsense_auth.domain.erasure import ErasureProgress
from spendsense_auth.handlers.ports import Clock, PasswordHasher, RateLimiter, RevokedTokens, TokenIssuer
from spendsense_auth.handlers.unit_of_work import (
    AuthUnitOfWork,
    ErasureRepository,
    SessionRepository,
    UserRepository,
)
from spendsense_shared.testing.fakes import FakeUnitOfWork


class FakeClock(Clock):
    def __init__(self, start: datetime | None = None) -> None:
        self.current = start or datetime(2026, 1, 1, tzinfo=UTC)

    def now(self) -> datetime:
        return self.current

    def advance(self, **delta: float) -> None:
        self.current += timedelta(**delta)


class InMemoryUserRepository(UserRepository):
    def __init__(self) -> None:
        self.users: dict[str, User] = {}
        self.hashes: dict[str, str | None] = {}
        self.identity_rows: list[Identity] = []

    async def get(self, user_id: str, *, for_update: bool = False) -> User | None:
        return self.users.get(user_id)

    async def by_username(self, username: str) -> User | None:
        return next((u for u in self.users.values() if u.username == username), None)

    async def by_email(self, email: str) -> User | None:
        return next((u for u in self.users.values() if u.email == email), None)

    async def find_identity(self, provider: Provider, subject: str) -> Identity | None:
        return next((i for i in self.identity_rows if (i.provider, i.subject) == (provider, subject)), None)

    async def identities(self, user_id: str) -> list[Identity]:
        return [i for i in self.identity_rows if i.user_id == user_id]

    def _check_unique(self, user: User) -> None:
        for other in self.users.values():
            if other.id == user.id:
                continue
            if user.email is not None and other.email == user.email:
                raise AuthError(409, "email_taken", "an account with this email already exists")
            if user.username is not None and other.username == user.username:
                raise AuthError(409, "username_taken", "this username is taken")

    async def add(self, user: User, password_hash: str | None = None) -> None:
        if user.id in self.users:
            raise AuthError(409, "conflict", "duplicate id")
        self._check_unique(user)
        self.users[user.id] = user
        self.hashes[user.id] = password_hash

    async def update(self, user: User) -> None:
        self._check_unique(user)
        self.users[user.id] = user

    async def password_hash(self, user_id: str) -> str | None:
        return self.hashes.get(user_id)

    async def set_password_hash(self, user_id: str, password_hash: str | None) -> None:
        self.hashes[user_id] = password_hash

    async def add_identity(self, identity: Identity) -> None:
        if await self.find_identity(identity.provider, identity.subject) is not None:
            raise AuthError(409, "identity_taken", "this sign-in belongs to another account")
        if any(i.provider == identity.provider for i in await self.identities(identity.user_id)):
            raise AuthError(409, "provider_already_linked", "already linked")
        self.identity_rows.append(identity)

    async def remove_identity(self, user_id: str, provider: Provider) -> None:
        self.identity_rows = [
            i for i in self.identity_rows if not (i.user_id == user_id and i.provider == provider)
        ]

    async def merge(self, source_user_id: str, target_user_id: str) -> None:
        taken = {i.provider for i in await self.identities(target_user_id)}
        moved = []
        for identity in self.identity_rows:
            if identity.user_id != source_user_id:
                moved.append(identity)
            elif identity.provider not in taken:
                moved.append(replace(identity, user_id=target_user_id))
        self.identity_rows = moved
        if self.hashes.get(target_user_id) is None and self.hashes.get(source_user_id) is not None:
            self.hashes[target_user_id] = self.hashes[source_user_id]
        await self.delete(source_user_id)

    async def delete(self, user_id: str) -> bool:
        existed = self.users.pop(user_id, None) is not None
        self.hashes.pop(user_id, None)
        self.identity_rows = [i for i in self.identity_rows if i.user_id != user_id]
        return existed

    async def count_with_role(self, role: str) -> int:
        return sum(1 for u in self.users.values() if role in u.roles)


class InMemorySessionRepository(SessionRepository):
    def __init__(self) -> None:
        self.rows: dict[str, RefreshSession] = {}

    async def add(self, session: RefreshSession) -> None:
        self.rows[session.token_hash] = session

    async def by_hash(self, token_hash: str, *, for_update: bool = False) -> RefreshSession | None:
        return self.rows.get(token_hash)

    async def mark_rotated(self, token_hash: str, at: datetime) -> None:
        self.rows[token_hash] = replace(self.rows[token_hash], rotated_at=at)

    def _revoke(self, match: Any, at: datetime) -> int:
        hit = [h for h, s in self.rows.items() if match(s) and s.revoked_at is None]
        for h in hit:
            self.rows[h] = replace(self.rows[h], revoked_at=at)
        return len(hit)

    async def revoke_family(self, family_id: str, at: datetime) -> int:
        return self._revoke(lambda s: s.family_id == family_id, at)

    async def revoke_user(self, user_id: str, at: datetime) -> int:
        return self._revoke(lambda s: s.user_id == user_id, at)

    async def delete_user(self, user_id: str) -> int:
        mine = [h for h, s in self.rows.items() if s.user_id == user_id]
        for h in mine:
            del self.rows[h]
        return len(mine)

    def live(self, user_id: str | None = None) -> list[RefreshSession]:
        return [
            s
            for s in self.rows.values()
            if s.revoked_at is None and s.rotated_at is None and (user_id is None or s.user_id == user_id)
        ]


class InMemoryErasureRepository(ErasureRepository):
    def __init__(self) -> None:
        self.rows: dict[str, ErasureProgress] = {}

    async def get(self, subject: str, *, for_update: bool = False) -> ErasureProgress | None:
        return self.rows.get(subject)

    async def save(self, progress: ErasureProgress) -> None:
        self.rows[progress.subject] = progress

    async def incomplete(self, limit: int) -> list[ErasureProgress]:
        waiting = [p for p in self.rows.values() if p.completed_at is None]
        return sorted(waiting, key=lambda p: (p.requested_at is None, p.requested_at, p.subject))[:limit]


class FakeAuthUnitOfWork(FakeUnitOfWork, AuthUnitOfWork):
    """Leaving without a commit restores the repositories as they were on entering (a rollback)."""

    def __init__(self) -> None:
        super().__init__()
        self.users = InMemoryUserRepository()
        self.sessions = InMemorySessionRepository()
        self.erasures = InMemoryErasureRepository()
        self._snapshot: tuple[Any, Any, Any] | None = None

    async def _begin(self) -> None:
        self._snapshot = copy.deepcopy((self.users, self.sessions, self.erasures))

    async def _commit(self, events: list[Any]) -> None:
        await super()._commit(events)
        self._snapshot = copy.deepcopy((self.users, self.sessions, self.erasures))

    async def _rollback(self) -> None:
        if self._snapshot is not None:
            self.users, self.sessions, self.erasures = self._snapshot
            self._snapshot = copy.deepcopy(self._snapshot)


class FakeTokenIssuer(TokenIssuer):
    """Readable tokens: ``access:{user}:{family}:{n}`` and ``refresh:{n}``."""

    def __init__(self, clock: Clock, access_ttl_s: int = 3600, refresh_ttl_s: int = 30 * 86400) -> None:
        self.clock = clock
        self.access_ttl_s = access_ttl_s
        self.refresh_ttl_s = refresh_ttl_s
        self._n = itertools.count(1)
        self.issued: list[tuple[str, str | None, tuple[str, ...]]] = []

    def issue(self, user: User, family_id: str | None = None) -> TokenPair:
        n = next(self._n)
        self.issued.append((user.id, family_id, user.roles))
        return TokenPair(f"access:{user.id}:{family_id}:{n}", f"refresh:{n}", self.access_ttl_s)


class CountingHasher(PasswordHasher):
    """``hashed:{password}``; counts every verify (and what it was verified against)."""

    def __init__(self) -> None:
        self.hashes = 0
        self.verified_against: list[str | None] = []

    async def hash(self, password: str) -> str:
        self.hashes += 1
        return f"hashed:{password}"

    async def verify(self, password: str, hashed: str | None) -> bool:
        self.verified_against.append(hashed)
        return hashed is not None and hashed == f"hashed:{password}"


class FakeRateLimiter(RateLimiter):
    """Counts per (scope, key) without windows; ``hits`` records every call."""

    def __init__(self) -> None:
        self.counts: dict[tuple[str, str], int] = {}
        self.hits: list[tuple[str, str, int, int]] = []

    async def hit(self, scope: str, key: str, limit: int, window_s: int) -> None:
        self.hits.append((scope, key, limit, window_s))
        n = self.counts[scope, key] = self.counts.get((scope, key), 0) + 1
        if n > limit:
            raise AuthError(429, "rate_limited", "too many attempts", retry_after_s=window_s)


class FakeRevokedTokens(RevokedTokens):
    def __init__(self) -> None:
        self.revoked: dict[str, int] = {}
        self.sessions: dict[str, int] = {}

    async def revoke(self, jti: str, ttl_s: int) -> None:
        self.revoked[jti] = ttl_s

    async def revoke_session(self, session_id: str, ttl_s: int) -> None:
        self.sessions[session_id] = ttl_s

    async def is_revoked(self, jti: str, session_id: str | None = None) -> bool:
        return jti in self.revoked or (session_id is not None and session_id in self.sessions)
