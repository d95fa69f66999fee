"""Profiles: created on registration, first consent or push registration; read without writing."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest
from unit.fakes import FakeProfileUnitOfWork

from spendsense_profile.domain.commands import (
    GetMobileProfile,
    GetProfile,
    GrantConsent,
    RegisterPushDevice,
)
from spendsense_profile.domain.profile import DeviceTokenInUse, MobileProfileView, PushDevice
from spendsense_profile.domain.uploads import Upload
from spendsense_profile.handlers.consent import grant_consent
from spendsense_profile.handlers.profile import (
    create_profile,
    get_mobile_profile,
    get_profile,
    register_push_device,
)
from spendsense_shared.messaging.catalog import UserMerged, UserRegistered, new_event


async def deliver(uow: FakeProfileUnitOfWork, data) -> None:
    """As the consumer does: one unit of work per event, committed after the handler."""
    async with uow:
        await create_profile(new_event(data, user_id=getattr(data, "user_id", None)), data, uow)
        await uow.commit()


def registered(user_id: str) -> UserRegistered:
    return UserRegistered(user_id=user_id, roles=["user"], registered_via="password")


async def test_a_registered_user_gets_a_profile_once(uow):
    await deliver(uow, registered("u1"))
    created = (await uow.consents.get_profile("u1")).created_at
    await deliver(uow, registered("u1"))  # a redelivery changes nothing

    view = await get_profile(GetProfile("u1"), uow)
    assert view is not None
    assert view.profile.user_id == "u1"
    assert view.profile.created_at == created
    assert view.consent is None
    assert view.uploads == 0
    assert view.latest_upload is None
    assert uow.published == []


async def test_the_registration_handler_refuses_other_events(uow):
    with pytest.raises(TypeError):
        await deliver(uow, UserMerged(source_user_id="a", target_user_id="b"))


async def test_reading_a_missing_profile_answers_none_and_creates_nothing(uow):
    assert await get_profile(GetProfile("u1"), uow) is None
    assert await get_mobile_profile(GetMobileProfile("u1"), uow) is None
    assert await uow.consents.get_profile("u1") is None
    assert uow.commits == 0


async def test_the_profile_shows_current_consent_and_the_latest_upload(uow):
    consent = await grant_consent(GrantConsent("u1"), uow)
    for upload_id in ("up_1", "up_2"):
        await uow.uploads.add(
            Upload.ingested(
                upload_id,
                "u1",
                size_bytes=10,
                user_ids=["u1"],
                counts={},
                notes=[],
                keys=[],
                format="json",
                as_of=date(2026, 1, 1),
            )
        )
    await uow.uploads.add(
        Upload.ingested(
            "up_other",
            "u2",
            size_bytes=1,
            user_ids=["u2"],
            counts={},
            notes=[],
            keys=[],
            format=None,
            as_of=None,
        )
    )

    view = await get_profile(GetProfile("u1"), uow)
    assert view is not None
    assert view.consent == consent
    assert view.uploads == 2
    assert view.latest_upload is not None
    assert (view.latest_upload.upload_id, view.latest_upload.status) == ("up_2", "ingested")

    mobile = await get_mobile_profile(GetMobileProfile("u1"), uow)
    assert mobile == MobileProfileView(user_id="u1", consent="granted", latest_upload_status="ingested")


async def test_the_mobile_profile_of_a_user_without_consent_or_uploads(uow):
    await deliver(uow, registered("u1"))
    mobile = await get_mobile_profile(GetMobileProfile("u1"), uow)
    assert mobile == MobileProfileView(user_id="u1", consent="none", latest_upload_status=None)


async def test_push_registration_ensures_the_profile_and_moves_a_token_only_once_it_is_unreachable(uow):
    token = "a1b2c3d4e5f6a7b8c9d0" * 3
    await register_push_device(RegisterPushDevice("u1", token, "ios"), uow)
    assert await uow.consents.get_profile("u1") is not None
    assert uow.push_devices.devices == {token: PushDevice(token, "u1", "ios")}
    await register_push_device(RegisterPushDevice("u1", token, "ios"), uow)  # again: fine

    with pytest.raises(DeviceTokenInUse):  # another user replaying u1's token takes nothing over
        await register_push_device(RegisterPushDevice("u2", token, "android"), uow)
    assert uow.push_devices.devices == {token: PushDevice(token, "u1", "ios")}

    await uow.push_devices.disable(token, datetime(2026, 1, 2, tzinfo=UTC))  # found uninstalled
    await register_push_device(RegisterPushDevice("u2", token, "android"), uow)
    assert uow.push_devices.devices == {token: PushDevice(token, "u2", "android")}
    assert await uow.consents.get_profile("u2") is not None
    assert uow.commits == 3
    assert uow.published == []
