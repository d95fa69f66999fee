"""The repositories the auth handlers need, and the unit of work that holds them (SQL implementations in
``adapters``, in-memory ones in the unit tests)."""

from __future__ import annotations

import abc
from datetime import datetime

from spendsense_auth.domain.accounts import Identity, Provider, RefreshSession, User
from spendsense_auth.domain.erasure import ErasureProgress
from spendsense_shared.unit_of_work import AbstractUnitOfWork


class UserRepository(abc.ABC):
    """Users, their password hashes and their identities."""

    @abc.abstractmethod
    async def get(self, user_id: str, *, for_update: bool = False) -> User | None: ...

    @abc.abstractmethod
    async def by_username(self, username: str) -> User | None:
        """``username`` lower-cased."""

    @abc.abstractmethod
    async def by_email(self, email: str) -> User | None:
        """``email`` normalized (``domain.accounts.normalize_email``)."""

    @abc.abstractmethod
    async def find_identity(self, provider: Provider, subject: str) -> Identity | None: ...

    @abc.abstractmethod
    async def identities(self, user_id: str) -> list[Identity]: ...

    @abc.abstractmethod
    async def add(self, user: User, password_hash: str | None = None) -> None:
        """Store a new user; AuthError 409 ``conflict`` when the email or username is taken."""

    @abc.abstractmethod
    async def update(self, user: User) -> None:
        """Store the user's email, username, display name and roles; AuthError 409 on a taken one."""

    @abc.abstractmethod
    async def password_hash(self, user_id: str) -> str | None: ...

    @abc.abstractmethod
    async def set_password_hash(self, user_id: str, password_hash: str | None) -> None: ...

    @abc.abstractmethod
    async def add_identity(self, identity: Identity) -> None:
        """AuthError 409 ``identity_taken`` when (provider, subject) already belongs to someone."""

    @abc.abstractmethod
    async def remove_identity(self, user_id: str, provider: Provider) -> None: ...

    @abc.abstractmethod
    async def merge(self, source_user_id: str, target_user_id: str) -> None:
        """Move every identity (and a password hash the target lacks) of the source to the target,
        then delete the source user."""

    @abc.abstractmethod
    async def delete(self, user_id: str) -> bool:
        """Delete the user and their identities; False when there was none."""

    @abc.abstractmethod
    async def count_with_role(self, role: str) -> int: ...


class SessionRepository(abc.ABC):
    """Refresh tokens (by hash), in families."""

    @abc.abstractmethod
    async def add(self, session: RefreshSession) -> None: ...

    @abc.abstractmethod
    async def by_hash(self, token_hash: str, *, for_update: bool = False) -> RefreshSession | None: ...

    @abc.abstractmethod
    async def mark_rotated(self, token_hash: str, at: datetime) -> None: ...

    @abc.abstractmethod
    async def revoke_family(self, family_id: str, at: datetime) -> int:
        """Revoke every live token of the family; how many."""

    @abc.abstractmethod
    async def revoke_user(self, user_id: str, at: datetime) -> int:
        """Revoke every live token of every family of the user; how many."""

    @abc.abstractmethod
    async def delete_user(self, user_id: str) -> int: ...


class ErasureRepository(abc.ABC):
    """Erasure progress, keyed by the user's pseudonym."""

    @abc.abstractmethod
    async def get(self, subject: str, *, for_update: bool = False) -> ErasureProgress | None: ...

    @abc.abstractmethod
    async def save(self, progress: ErasureProgress) -> None:
        """Insert or replace the record (and its confirmations)."""

    @abc.abstractmethod
    async def incomplete(self, limit: int) -> list[ErasureProgress]:
        """Erasures still waiting for a service, oldest first."""


class AuthUnitOfWork(AbstractUnitOfWork):
    users: UserRepository
    sessions: SessionRepository
    erasures: ErasureRepository
