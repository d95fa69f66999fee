"""Consent and profile persistence in the profile schema."""

from __future__ import annotations

from sqlalchemy import select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from spendsense_profile.adapters.orm import consents, profiles
from spendsense_profile.domain.consent import Consent


def _to_domain(row: object) -> Consent:
    return Consent(
        consent_id=row.consent_id,  # type: ignore[attr-defined]
        user_id=row.user_id,  # type: ignore[attr-defined]
        policy_version=row.policy_version,  # type: ignore[attr-defined]
        scopes=tuple(row.scopes),  # type: ignore[attr-defined]
        granted_at=row.granted_at,  # type: ignore[attr-defined]
        revoked_at=row.revoked_at,  # type: ignore[attr-defined]
    )


class ConsentRepository:
    def __init__(self, session: AsyncSession):
        self.session = session

    async def ensure_profile(self, user_id: str) -> None:
        await self.session.execute(insert(profiles).values(user_id=user_id).on_conflict_do_nothing())

    async def current(self, user_id: str, *, for_update: bool = False) -> Consent | None:
        query = select(consents).where(consents.c.user_id == user_id, consents.c.revoked_at.is_(None))
        if for_update:
            query = query.with_for_update()
        row = (await self.session.execute(query)).first()
        return None if row is None else _to_domain(row)

    async def history(self, user_id: str) -> list[Consent]:
        rows = await self.session.execute(
            select(consents).where(consents.c.user_id == user_id).order_by(consents.c.granted_at.desc())
        )
        return [_to_domain(r) for r in rows]

    async def add(self, consent: Consent) -> None:
        await self.session.execute(
            insert(consents).values(
                consent_id=consent.consent_id,
                user_id=consent.user_id,
                policy_version=consent.policy_version,
                scopes=list(consent.scopes),
                granted_at=consent.granted_at,
            )
        )

    async def mark_revoked(self, consent: Consent) -> None:
        await self.session.execute(
            update(consents)
            .where(consents.c.consent_id == consent.consent_id)
            .values(revoked_at=consent.revoked_at)
        )
