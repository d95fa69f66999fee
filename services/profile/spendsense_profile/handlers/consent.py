"""Use cases: grant and revoke consent. State change and event commit together (outbox)."""

from __future__ import annotations

from datetime import UTC, datetime

from spendsense_profile.adapters.repository import ConsentRepository
from spendsense_profile.domain import consent as rules
from spendsense_profile.domain.consent import Consent
from spendsense_shared.db import Database
from spendsense_shared.messaging.catalog import ConsentGranted, ConsentRevoked, new_event


async def grant_consent(
    database: Database, user_id: str, policy_version: str | None, scopes: list[str] | None
) -> Consent:
    now = datetime.now(UTC)
    async with database.uow() as uow:
        repo = ConsentRepository(uow.session)
        await repo.ensure_profile(user_id)
        current = await repo.current(user_id, for_update=True)
        if current is not None:  # a new grant (e.g. a new policy version) supersedes the current one
            superseded = rules.revoke(current, now)
            await repo.mark_revoked(superseded)
        consent = rules.grant(user_id, policy_version, scopes, now)
        await repo.add(consent)
        uow.publish(
            new_event(
                ConsentGranted(
                    user_id=user_id,
                    consent_id=consent.consent_id,
                    policy_version=consent.policy_version,
                    scopes=list(consent.scopes),
                    granted_at=now,
                ),
                user_id=user_id,
            )
        )
        await uow.commit()
    return consent


async def revoke_consent(database: Database, user_id: str) -> Consent:
    now = datetime.now(UTC)
    async with database.uow() as uow:
        repo = ConsentRepository(uow.session)
        revoked = rules.revoke(await repo.current(user_id, for_update=True), now)
        await repo.mark_revoked(revoked)
        uow.publish(
            new_event(
                ConsentRevoked(user_id=user_id, consent_id=revoked.consent_id, revoked_at=now),
                user_id=user_id,
            )
        )
        await uow.commit()
    return revoked


async def consent_history(database: Database, user_id: str) -> list[Consent]:
    async with database.uow() as uow:
        return await ConsentRepository(uow.session).history(user_id)


class StoredConsent:
    """``ConsentLookup`` over the profile service's own consent records."""

    def __init__(self, database: Database):
        self.database = database

    async def has_current_consent(self, user_id: str) -> bool:
        async with self.database.uow() as uow:
            return await ConsentRepository(uow.session).current(user_id) is not None
