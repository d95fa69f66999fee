"""Use cases: grant and revoke consent, read its history. State change and event commit together (outbox)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime

from spendsense_profile.domain import consent as rules
from spendsense_profile.domain.commands import (
    GetConsentHistory,
    GrantConsent,
    HasCurrentConsent,
    RevokeConsent,
)
from spendsense_profile.domain.consent import Consent
from spendsense_profile.handlers.unit_of_work import ProfileUnitOfWork
from spendsense_shared.consent import RememberedConsent
from spendsense_shared.messaging.catalog import ConsentGranted, ConsentRevoked, new_event
from spendsense_shared.read_cache import ReadCache
from spendsense_shared.security import ConsentStanding


async def grant_consent(cmd: GrantConsent, uow: ProfileUnitOfWork) -> Consent:
    now = datetime.now(UTC)
    async with uow:
        await uow.consents.ensure_profile(cmd.user_id)
        current = await uow.consents.current(cmd.user_id, for_update=True)
        consent = rules.grant(cmd.user_id, cmd.policy_version, cmd.scopes, now)
        if current is not None and rules.renews(current, consent):
            return current  # already granted as asked: nothing to record or announce
        if current is not None:  # a new grant (e.g. a new policy version) supersedes the current one
            await uow.consents.mark_revoked(rules.revoke(current, now))
        await uow.consents.add(consent)
        uow.publish(
            new_event(
                ConsentGranted(
                    user_id=cmd.user_id,
                    consent_id=consent.consent_id,
                    policy_version=consent.policy_version,
                    scopes=list(consent.scopes),
                    granted_at=now,
                ),
                user_id=cmd.user_id,
            )
        )
        await uow.commit()
    return consent


async def revoke_consent(cmd: RevokeConsent, uow: ProfileUnitOfWork) -> Consent:
    now = datetime.now(UTC)
    async with uow:
        await uow.consents.ensure_profile(cmd.user_id)  # one consent change at a time per user
        revoked = rules.revoke(await uow.consents.current(cmd.user_id, for_update=True), now)
        await uow.consents.mark_revoked(revoked)
        uow.publish(
            new_event(
                ConsentRevoked(user_id=cmd.user_id, consent_id=revoked.consent_id, revoked_at=now),
                user_id=cmd.user_id,
            )
        )
        await uow.commit()
    return revoked


async def consent_history(query: GetConsentHistory, uow: ProfileUnitOfWork) -> list[Consent]:
    async with uow:
        return await uow.consents.history(query.user_id)


async def has_current_consent(query: HasCurrentConsent, uow: ProfileUnitOfWork) -> bool:
    async with uow:
        return await uow.consents.current(query.user_id) is not None


class StoredConsent:
    """``ConsentLookup`` (the routes' access checks) over the profile's own consent records."""

    def __init__(self, unit_of_work: Callable[[], ProfileUnitOfWork], cache: ReadCache | None = None):
        self.unit_of_work = unit_of_work
        self.remembered = RememberedConsent(cache)

    async def has_current_consent(self, user_id: str) -> bool:
        return await has_current_consent(HasCurrentConsent(user_id), self.unit_of_work())

    async def is_erased(self, user_id: str) -> bool:
        async with self.unit_of_work() as uow:
            return await uow.consents.is_erased(user_id)

    async def standing(self, user_id: str) -> ConsentStanding:
        """Both answers on one connection (the access checks of a request ask for both); a current consent
        is remembered (:class:`RememberedConsent`)."""
        if self.remembered.is_current(user_id):
            return ConsentStanding(erased=False, current=True)
        version = self.remembered.version(user_id)
        async with self.unit_of_work() as uow:
            if await uow.consents.is_erased(user_id):
                return ConsentStanding(erased=True, current=False)
            standing = ConsentStanding(erased=False, current=await uow.consents.current(user_id) is not None)
        self.remembered.note(user_id, standing, version)
        return standing
