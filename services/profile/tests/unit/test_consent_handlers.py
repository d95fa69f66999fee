"""Grant, revoke and read consent, on the in-memory unit of work."""

from __future__ import annotations

import pytest

from spendsense_profile.domain.commands import (
    GetConsentHistory,
    GrantConsent,
    HasCurrentConsent,
    RevokeConsent,
)
from spendsense_profile.domain.consent import ConsentError
from spendsense_profile.handlers.consent import (
    StoredConsent,
    consent_history,
    grant_consent,
    has_current_consent,
    revoke_consent,
)


async def test_granting_consent_stores_it_ensures_the_profile_and_announces_it(uow):
    consent = await grant_consent(GrantConsent("u1", scopes=["analysis"]), uow)

    assert consent.is_current
    assert consent.policy_version == "2026-01"
    assert consent.scopes == ("analysis",)
    assert await uow.consents.current("u1") == consent
    assert await uow.consents.get_profile("u1") is not None
    assert uow.commits == 1
    [event] = uow.published
    assert event.type == "consent.granted"
    assert event.user_id == "u1"
    assert event.data["consent_id"] == consent.consent_id
    assert event.data["scopes"] == ["analysis"]


async def test_a_new_grant_supersedes_the_current_consent(uow):
    first = await grant_consent(GrantConsent("u1", policy_version="2025-06"), uow)
    second = await grant_consent(GrantConsent("u1"), uow)

    history = await consent_history(GetConsentHistory("u1"), uow)
    assert [c.consent_id for c in history] == [second.consent_id, first.consent_id]
    assert [c.is_current for c in history] == [True, False]
    assert history[1].revoked_at == second.granted_at
    assert uow.published_types() == ["consent.granted", "consent.granted"]


async def test_the_same_grant_again_changes_nothing(uow):
    first = await grant_consent(GrantConsent("u1", scopes=["recommendations", "analysis"]), uow)

    again = await grant_consent(GrantConsent("u1", scopes=["analysis", "recommendations"]), uow)

    assert again == first  # the current consent, unchanged
    assert [c.consent_id for c in await consent_history(GetConsentHistory("u1"), uow)] == [first.consent_id]
    assert uow.published_types() == ["consent.granted"]  # announced once
    assert uow.commits == 1


async def test_other_scopes_are_a_new_grant(uow):
    first = await grant_consent(GrantConsent("u1", scopes=["analysis"]), uow)

    second = await grant_consent(GrantConsent("u1", scopes=["analysis", "recommendations"]), uow)

    assert second.consent_id != first.consent_id
    assert uow.published_types() == ["consent.granted", "consent.granted"]


@pytest.mark.parametrize("scopes", [["analysis", "selling_data"], ["recommendations"]])
async def test_an_invalid_grant_changes_nothing(uow, scopes):
    with pytest.raises(ConsentError) as raised:
        await grant_consent(GrantConsent("u1", scopes=scopes), uow)

    assert raised.value.code == "invalid_scope"
    assert await uow.consents.history("u1") == []
    assert await uow.consents.get_profile("u1") is None  # the transaction rolled back
    assert uow.commits == 0
    assert uow.published == []


async def test_revoking_consent_ends_it_and_announces_it(uow):
    granted = await grant_consent(GrantConsent("u1"), uow)

    revoked = await revoke_consent(RevokeConsent("u1"), uow)

    assert revoked.consent_id == granted.consent_id
    assert revoked.revoked_at is not None
    assert await uow.consents.current("u1") is None
    assert uow.published_types() == ["consent.granted", "consent.revoked"]
    assert uow.published[-1].data["consent_id"] == granted.consent_id


async def test_there_is_nothing_to_revoke_without_a_current_consent(uow):
    with pytest.raises(ConsentError) as raised:
        await revoke_consent(RevokeConsent("u1"), uow)
    assert raised.value.code == "no_current_consent"
    assert uow.published == []

    await grant_consent(GrantConsent("u1"), uow)
    await revoke_consent(RevokeConsent("u1"), uow)
    with pytest.raises(ConsentError):
        await revoke_consent(RevokeConsent("u1"), uow)
    assert uow.published_types() == ["consent.granted", "consent.revoked"]


async def test_history_is_empty_for_a_user_who_never_consented(uow):
    assert await consent_history(GetConsentHistory("nobody"), uow) == []


async def test_the_consent_lookup_follows_grants_and_revocations(uow):
    lookup = StoredConsent(lambda: uow)
    assert not await lookup.has_current_consent("u1")
    await grant_consent(GrantConsent("u1"), uow)
    assert await lookup.has_current_consent("u1")
    assert await has_current_consent(HasCurrentConsent("u1"), uow)
    assert not await lookup.has_current_consent("u2")
    await revoke_consent(RevokeConsent("u1"), uow)
    assert not await lookup.has_current_consent("u1")
