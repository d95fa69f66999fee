"""The auth repositories on one SQLAlchemy session, in the auth schema."""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from datetime import datetime
from typing import Any

from sqlalchemy import Row, delete, func, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from spendsense_auth.adapters.orm import erasure_confirmations, erasures, identities, refresh_tokens, users
from spendsense_auth.domain.accounts import AuthError, Identity, Provider, RefreshSession, User
from spendsense_auth.domain.erasure import ErasureProgress
from spendsense_auth.handlers.unit_of_work import ErasureRepository, SessionRepository, UserRepository


def _user(row: Any) -> User:
    return User(
        id=row.id,
        email=row.email,
        username=row.username,
        roles=tuple(row.roles),
        created_at=row.created_at,
        display_name=row.display_name,
    )


def _identity(row: Any) -> Identity:
    return Identity(
        user_id=row.user_id,
        provider=row.provider,
        subject=row.subject,
        email=row.email,
        created_at=row.created_at,
    )


def _conflict(exc: IntegrityError) -> AuthError:
    text = str(exc.orig)
    if "email" in text:
        return AuthError(409, "email_taken", "an account with this email already exists")
    if "username" in text:
        return AuthError(409, "username_taken", "this username is taken")
    if "uq_identities_user_provider" in text:
        return AuthError(409, "provider_already_linked", "this account already has a sign-in of that kind")
    if "identities" in text:
        return AuthError(409, "identity_taken", "this sign-in belongs to another account")
    return AuthError(409, "conflict", "conflicting change")


class SqlUserRepository(UserRepository):
    def __init__(self, session: AsyncSession):
        self.session = session

    @asynccontextmanager
    async def _unique(self) -> AsyncIterator[None]:
        """A savepoint: a unique violation becomes a 409 and leaves the transaction usable."""
        try:
            async with self.session.begin_nested():
                yield
        except IntegrityError as exc:
            raise _conflict(exc) from exc

    async def _one(self, *where: Any, for_update: bool = False) -> User | None:
        query = select(users).where(*where)
        if for_update:
            query = query.with_for_update()
        row = (await self.session.execute(query)).first()
        return None if row is None else _user(row)

    async def get(self, user_id: str, *, for_update: bool = False) -> User | None:
        return await self._one(users.c.id == user_id, for_update=for_update)

    async def by_username(self, username: str) -> User | None:
        return await self._one(users.c.username == username)

    async def by_email(self, email: str) -> User | None:
        return await self._one(users.c.email == email)

    async def find_identity(self, provider: Provider, subject: str) -> Identity | None:
        row = (
            await self.session.execute(
                select(identities).where(identities.c.provider == provider, identities.c.subject == subject)
            )
        ).first()
        return None if row is None else _identity(row)

    async def identities(self, user_id: str) -> list[Identity]:
        rows = await self.session.execute(
            select(identities).where(identities.c.user_id == user_id).order_by(identities.c.created_at)
        )
        return [_identity(r) for r in rows]

    async def add(self, user: User, password_hash: str | None = None) -> None:
        async with self._unique():
            await self.session.execute(
                users.insert().values(
                    id=user.id,
                    email=user.email,
                    username=user.username,
                    display_name=user.display_name,
                    roles=list(user.roles),
                    password_hash=password_hash,
                    created_at=user.created_at,
                )
            )

    async def update(self, user: User) -> None:
        async with self._unique():
            await self.session.execute(
                update(users)
                .where(users.c.id == user.id)
                .values(
                    email=user.email,
                    username=user.username,
                    display_name=user.display_name,
                    roles=list(user.roles),
                    updated_at=func.now(),
                )
            )

    async def password_hash(self, user_id: str) -> str | None:
        value = await self.session.scalar(select(users.c.password_hash).where(users.c.id == user_id))
        return None if value is None else str(value)

    async def set_password_hash(self, user_id: str, password_hash: str | None) -> None:
        await self.session.execute(
            update(users)
            .where(users.c.id == user_id)
            .values(password_hash=password_hash, updated_at=func.now())
        )

    async def add_identity(self, identity: Identity) -> None:
        async with self._unique():
            await self.session.execute(
                identities.insert().values(
                    user_id=identity.user_id,
                    provider=identity.provider,
                    subject=identity.subject,
                    email=identity.email,
                    created_at=identity.created_at,
                )
            )

    async def remove_identity(self, user_id: str, provider: Provider) -> None:
        await self.session.execute(
            delete(identities).where(identities.c.user_id == user_id, identities.c.provider == provider)
        )

    async def merge(self, source_user_id: str, target_user_id: str) -> None:
        target_providers = select(identities.c.provider).where(identities.c.user_id == target_user_id)
        await self.session.execute(
            update(identities)
            .where(identities.c.user_id == source_user_id, identities.c.provider.not_in(target_providers))
            .values(user_id=target_user_id)
        )
        source_hash = await self.password_hash(source_user_id)
        if source_hash is not None and await self.password_hash(target_user_id) is None:
            await self.set_password_hash(target_user_id, source_hash)
        await self.session.execute(delete(users).where(users.c.id == source_user_id))

    async def delete(self, user_id: str) -> bool:
        result = await self.session.execute(delete(users).where(users.c.id == user_id).returning(users.c.id))
        return result.first() is not None

    async def count_with_role(self, role: str) -> int:
        # Locks those users' rows, so two admins demoting each other at once cannot both succeed.
        rows = await self.session.execute(
            select(users.c.id).where(users.c.roles.contains([role])).with_for_update()
        )
        return len(rows.all())


def _session(row: Any) -> RefreshSession:
    return RefreshSession(
        token_hash=row.token_hash,
        family_id=row.family_id,
        user_id=row.user_id,
        issued_at=row.issued_at,
        expires_at=row.expires_at,
        rotated_at=row.rotated_at,
        revoked_at=row.revoked_at,
    )


class SqlSessionRepository(SessionRepository):
    def __init__(self, session: AsyncSession):
        self.session = session

    async def add(self, session: RefreshSession) -> None:
        await self.session.execute(
            refresh_tokens.insert().values(
                token_hash=session.token_hash,
                family_id=session.family_id,
                user_id=session.user_id,
                issued_at=session.issued_at,
                expires_at=session.expires_at,
            )
        )

    async def by_hash(self, token_hash: str, *, for_update: bool = False) -> RefreshSession | None:
        query = select(refresh_tokens).where(refresh_tokens.c.token_hash == token_hash)
        if for_update:
            query = query.with_for_update()
        row = (await self.session.execute(query)).first()
        return None if row is None else _session(row)

    async def mark_rotated(self, token_hash: str, at: datetime) -> None:
        await self.session.execute(
            update(refresh_tokens).where(refresh_tokens.c.token_hash == token_hash).values(rotated_at=at)
        )

    async def _revoke(self, where: Any, at: datetime) -> int:
        result = await self.session.execute(
            update(refresh_tokens)
            .where(where, refresh_tokens.c.revoked_at.is_(None))
            .values(revoked_at=at)
            .returning(refresh_tokens.c.token_hash)
        )
        return len(result.all())

    async def revoke_family(self, family_id: str, at: datetime) -> int:
        return await self._revoke(refresh_tokens.c.family_id == family_id, at)

    async def revoke_user(self, user_id: str, at: datetime) -> int:
        return await self._revoke(refresh_tokens.c.user_id == user_id, at)

    async def delete_user(self, user_id: str) -> int:
        result = await self.session.execute(
            delete(refresh_tokens)
            .where(refresh_tokens.c.user_id == user_id)
            .returning(refresh_tokens.c.token_hash)
        )
        return len(result.all())


class SqlErasureRepository(ErasureRepository):
    def __init__(self, session: AsyncSession):
        self.session = session

    async def get(self, subject: str, *, for_update: bool = False) -> ErasureProgress | None:
        query = select(erasures).where(erasures.c.subject == subject)
        row = (await self.session.execute(query.with_for_update() if for_update else query)).first()
        if row is None:
            return None
        return (await self._with_confirmations([row]))[0]

    async def save(self, progress: ErasureProgress) -> None:
        values = {"requested_at": progress.requested_at, "completed_at": progress.completed_at}
        await self.session.execute(
            pg_insert(erasures)
            .values(subject=progress.subject, **values)
            .on_conflict_do_update(index_elements=[erasures.c.subject], set_=values)
        )
        if progress.confirmed:
            await self.session.execute(
                pg_insert(erasure_confirmations)
                .values(
                    [
                        {"subject": progress.subject, "service": service, "erased_at": at}
                        for service, at in progress.confirmed.items()
                    ]
                )
                .on_conflict_do_nothing()
            )

    async def incomplete(self, limit: int) -> list[ErasureProgress]:
        rows = await self.session.execute(
            select(erasures)
            .where(erasures.c.completed_at.is_(None))
            .order_by(erasures.c.requested_at.asc().nulls_last(), erasures.c.subject)
            .limit(limit)
        )
        return await self._with_confirmations(rows.all())

    async def _with_confirmations(self, rows: Sequence[Row[Any]]) -> list[ErasureProgress]:
        confirmed: dict[str, dict[str, datetime]] = {r.subject: {} for r in rows}
        found = await self.session.execute(
            select(erasure_confirmations).where(erasure_confirmations.c.subject.in_(list(confirmed)))
        )
        for c in found:
            confirmed[c.subject][c.service] = c.erased_at
        return [
            ErasureProgress(r.subject, r.requested_at, confirmed[r.subject], r.completed_at) for r in rows
        ]
