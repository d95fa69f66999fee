"""``user.merged``: everything the profile keeps of the merged-away account becomes the remaining
account's — profile, consent history (never two current consents), uploads' membership, normalized data
(the target's row wins on a shared key) and push devices — and a redelivery changes nothing."""

from __future__ import annotations

import copy
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from plaid_files import tx, user
from unit.fakes import FakeProfileUnitOfWork, Uploads

from spendsense_profile.domain.commands import (
    GetConsentHistory,
    GetProfile,
    GetUpload,
    GrantConsent,
    RegisterPushDevice,
    RevokeConsent,
)
from spendsense_profile.domain.profile import PushDevice
from spendsense_profile.handlers.consent import consent_history, grant_consent, revoke_consent
from spendsense_profile.handlers.profile import (
    create_profile,
    get_profile,
    merge_profiles,
    register_push_device,
)
from spendsense_profile.handlers.uploads import get_upload, record_progress
from spendsense_shared.messaging.catalog import (
    PersonaAssigned,
    UploadFailed,
    UserMerged,
    UserRegistered,
    new_event,
    parse_data,
)
from spendsense_shared.messaging.claim_check import ClaimCheck
from spendsense_shared.messaging.envelope import EventEnvelope
from spendsense_shared.testing.fakes import InMemoryBlobStore


def merged(source: str = "old", target: str = "new", at: datetime | None = None) -> EventEnvelope:
    event = new_event(UserMerged(source_user_id=source, target_user_id=target))
    return event if at is None else event.model_copy(update={"occurred_at": at})


async def deliver(uow: FakeProfileUnitOfWork, event: EventEnvelope, handler: Any = merge_profiles) -> None:
    """As the consumer does: one unit of work per event, committed after the handler."""
    async with uow:
        await handler(event, parse_data(event), uow)
        await uow.commit()


async def ingest(uow: FakeProfileUnitOfWork, blobs: InMemoryBlobStore, body: Any, actor: str, operator=False):
    """Received and processed, as the API and the worker do."""
    return await Uploads(uow, blobs).ingest(body, actor, operator=operator)


def state(uow: FakeProfileUnitOfWork) -> Any:
    return copy.deepcopy(uow._state())


def rows_of(uow: FakeProfileUnitOfWork, table: str) -> dict[tuple[str, str], dict[str, Any]]:
    return uow.data.rows[table]


async def test_a_target_without_anything_takes_all_of_the_sources_data_and_a_redelivery_changes_nothing(
    uow, blobs
):
    await grant_consent(GrantConsent("old"), uow)
    await revoke_consent(RevokeConsent("old"), uow)
    current = await grant_consent(GrantConsent("old"), uow)
    upload = await ingest(uow, blobs, user("old"), "old")
    await register_push_device(RegisterPushDevice("old", "tok-1", "ios"), uow)
    history = await consent_history(GetConsentHistory("old"), uow)
    published = list(uow.published)

    event = merged()
    await deliver(uow, event)

    view = await get_profile(GetProfile("new"), uow)
    assert view is not None
    assert view.consent == replace(current, user_id="new")
    assert view.uploads == 1
    assert view.latest_upload.upload_id == upload.upload_id
    moved = await consent_history(GetConsentHistory("new"), uow)
    assert [c.consent_id for c in moved] == [c.consent_id for c in history]
    assert {c.user_id for c in moved} == {"new"}
    assert await get_profile(GetProfile("old"), uow) is None
    assert await consent_history(GetConsentHistory("old"), uow) == []
    stored = uow.uploads.uploads[upload.upload_id]
    assert (stored.uploader_id, stored.user_ids, [u.user_id for u in stored.users]) == (
        "new",
        ["new"],
        ["new"],
    )
    assert (await get_upload(GetUpload(upload.upload_id, "new", actor_is_operator=False), uow)) is not None
    for table in ("accounts", "transactions", "credit_liabilities"):
        assert rows_of(uow, table)
        assert {user_id for user_id, _ in rows_of(uow, table)} == {"new"}
        assert {r["user_id"] for r in rows_of(uow, table).values()} == {"new"}
    assert uow.push_devices.devices == {"tok-1": PushDevice("tok-1", "new", "ios")}
    assert uow.published == published  # the merge publishes nothing

    after = state(uow)
    await deliver(uow, event)  # a redelivery
    await deliver(uow, merged())  # or the merge announced again
    assert state(uow) == after


async def test_when_both_have_a_current_consent_the_targets_stays_and_the_sources_is_revoked_at_the_merge(
    uow,
):
    old = await grant_consent(GrantConsent("old"), uow)
    new = await grant_consent(GrantConsent("new"), uow)
    at = datetime.now(UTC) + timedelta(minutes=5)

    await deliver(uow, merged(at=at))

    assert (await uow.consents.current("new")).consent_id == new.consent_id
    history = {c.consent_id: c for c in await consent_history(GetConsentHistory("new"), uow)}
    assert set(history) == {old.consent_id, new.consent_id}
    assert history[old.consent_id].revoked_at == at
    assert history[new.consent_id].revoked_at is None


async def test_when_only_the_sources_consent_is_current_it_becomes_the_targets(uow):
    await grant_consent(GrantConsent("new"), uow)
    await revoke_consent(RevokeConsent("new"), uow)
    old = await grant_consent(GrantConsent("old"), uow)
    await deliver(uow, merged())
    assert (await uow.consents.current("new")).consent_id == old.consent_id
    assert len(await consent_history(GetConsentHistory("new"), uow)) == 2


async def test_an_existing_target_profile_stays_and_a_registration_of_the_target_changes_nothing(uow):
    async with uow:
        await uow.consents.ensure_profile("new")
        await uow.commit()
    created = uow.consents.profiles["new"].created_at
    await deliver(uow, merged())
    registered = new_event(UserRegistered(user_id="new", roles=["user"], registered_via="oauth"))
    await deliver(uow, registered, create_profile)  # arriving after the merge
    assert uow.consents.profiles["new"].created_at == created
    assert "old" not in uow.consents.profiles


async def test_data_and_uploads_of_both_merge_with_the_targets_rows_and_progress_winning(uow, blobs):
    for user_id in ("old", "new", "other"):
        await grant_consent(GrantConsent(user_id), uow)
    batch = {
        "users": [
            user("old", transactions=[tx("t-old", amount=2.0)]),
            user("new", transactions=[tx("t-new", amount=4.0)]),
            user("other", transactions=[tx("t-other")]),
        ]
    }
    upload = await ingest(uow, blobs, batch, "op-1", operator=True)
    # the same transaction id for both (transaction ids are unique within an upload, not across users)
    own = await ingest(uow, blobs, user("old", transactions=[tx("t-shared", amount=1.0)]), "old")
    await ingest(uow, blobs, user("new", transactions=[tx("t-shared", amount=3.0)]), "new")
    claim = ClaimCheck(bucket="b", key="k", sha256="0" * 64, size_bytes=2)
    for user_id in ("new", "other"):
        data = PersonaAssigned(
            user_id=user_id,
            upload_id=upload.upload_id,
            as_of="2025-11-01",
            rule_set_version="v1",
            personas={"30d": "general_wellness", "180d": "general_wellness"},
            details=claim,
        )
        await deliver(uow, new_event(data), record_progress)
    failure = UploadFailed(
        upload_id=upload.upload_id, user_id="old", stage="analysis", reason="no_transactions"
    )
    await deliver(uow, new_event(failure), record_progress)
    assert uow.uploads.uploads[upload.upload_id].status == "analyzed"
    assert uow.uploads.uploads[upload.upload_id].error is not None

    await deliver(uow, merged())

    stored = uow.uploads.uploads[upload.upload_id]
    assert stored.user_ids == ["new", "other"]
    assert [(u.user_id, u.stage) for u in sorted(stored.users, key=lambda u: u.user_id)] == [
        ("new", "analyzed"),
        ("other", "analyzed"),
    ]
    assert (stored.status, stored.error, stored.uploader_id) == ("analyzed", None, "op-1")
    mine = uow.uploads.uploads[own.upload_id]
    assert (mine.uploader_id, mine.user_ids) == ("new", ["new"])
    assert await uow.uploads.count_for_user("new") == 3
    assert await uow.uploads.count_for_user("old") == 0

    transactions = rows_of(uow, "transactions")
    assert {k for k in transactions if k[0] != "other"} == {
        ("new", "t-shared"),
        ("new", "t-old"),
        ("new", "t-new"),
    }
    assert transactions[("new", "t-shared")]["amount"] == 3.0  # the target's row is kept
    assert transactions[("new", "t-old")]["amount"] == 2.0
    assert not [k for table in uow.data.rows.values() for k in table if k[0] == "old"]
    snapshot = await uow.data.snapshot(["new"])
    assert snapshot["transactions"].num_rows == 3


async def test_the_merge_handler_refuses_other_events(uow):
    with pytest.raises(TypeError):
        await deliver(uow, new_event(UserRegistered(user_id="a", roles=["user"], registered_via="password")))
