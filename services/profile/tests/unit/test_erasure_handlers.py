"""The right to be forgotten in the profile service: ``EraseUser`` revokes a current consent, deletes
every row and snapshot of the user — an upload of only theirs whole, their part of a shared batch
import, their push devices and those devices' SNS endpoints — and publishes ``consent.revoked`` then
``user.erasure_requested`` in the same transaction, then ``profile.user_erased`` (the pseudonym only);
asking again deletes nothing more, asks the other services again and confirms again."""

from __future__ import annotations

import json
from typing import Any

import pytest
from plaid_files import tx, user
from unit.fakes import FakeProfileUnitOfWork, TransientPushError, Uploads

from spendsense_profile.domain.commands import (
    EraseUser,
    GetConsentHistory,
    GetProfile,
    GrantConsent,
    RegisterPushDevice,
)
from spendsense_profile.handlers.consent import consent_history, grant_consent
from spendsense_profile.handlers.erasure import erase_user
from spendsense_profile.handlers.profile import get_profile, register_push_device
from spendsense_shared.dataset import from_parquet
from spendsense_shared.erasure import pseudonym
from spendsense_shared.testing.fakes import InMemoryBlobStore


def holding(blobs: InMemoryBlobStore, user_id: str) -> list[str]:
    """The snapshot objects holding a row of the user."""
    return sorted(
        name
        for name, body in blobs.objects.items()
        if name.endswith(".parquet") and user_id in from_parquet(body)["user_id"].to_pylist()
    )


async def ingest(uow: FakeProfileUnitOfWork, blobs: InMemoryBlobStore, body: Any, actor: str, operator=False):
    """Received and processed, as the API and the worker do."""
    return await Uploads(uow, blobs).ingest(body, actor, operator=operator)


def mentions(value: Any, user_id: str) -> bool:
    return user_id in json.dumps(value, default=str)


async def test_erasure_deletes_everything_of_the_user_and_keeps_the_others_part_of_a_shared_upload(
    uow, blobs, push
):
    for user_id in ("u1", "u2"):
        await grant_consent(GrantConsent(user_id), uow)
    own = await ingest(uow, blobs, user("u1"), "u1")
    batch = await ingest(
        uow,
        blobs,
        {"users": [user("u1"), user("u2", transactions=[tx("t9"), tx("t10")])]},
        "op-1",
        operator=True,
    )
    await register_push_device(RegisterPushDevice("u1", "tok-1", "ios"), uow)
    await register_push_device(RegisterPushDevice("u1", "tok-1b", "android"), uow)  # never pushed to
    await register_push_device(RegisterPushDevice("u2", "tok-2", "android"), uow)
    for token in ("tok-1", "tok-2"):  # their first push created their endpoints
        device = uow.push_devices.devices[token]
        await uow.push_devices.set_endpoint(token, await push.create_endpoint(device.platform, token))
    mine, theirs = push.arn_of("tok-1"), push.arn_of("tok-2")
    assert holding(blobs, "u1")  # their own upload's chunk and the batch's…
    assert holding(blobs, "u2")  # …which holds u2 too
    before = len(uow.published)

    outcome = await erase_user(EraseUser("u1"), uow, blobs, push)

    assert outcome.consent_revoked
    assert outcome.objects_deleted > 0
    assert [e.type for e in uow.published[-3:]] == [
        "consent.revoked",
        "user.erasure_requested",
        "profile.user_erased",
    ]
    assert len(uow.published) < before + 3  # the committed events naming u1 are forgotten
    confirmation = uow.published[-1]
    assert confirmation.user_id is None
    assert confirmation.data["subject"] == pseudonym("u1")
    assert not mentions(confirmation.model_dump(mode="json"), "u1")
    assert push.deleted == [mine]  # the endpoint of their device; the other one never had one
    assert theirs in push.endpoints
    assert await get_profile(GetProfile("u1"), uow) is None
    assert await consent_history(GetConsentHistory("u1"), uow) == []
    assert own.upload_id not in uow.uploads.uploads
    shared = uow.uploads.uploads[batch.upload_id]
    assert shared.user_ids == ["u2"]
    assert [u.user_id for u in shared.users] == ["u2"]
    assert not mentions((shared.keys, shared.notes, shared.error, shared.uploader_id), "u1")
    assert all(user_id != "u1" for rows in uow.data.rows.values() for user_id, _ in rows)
    assert any(user_id == "u2" for user_id, _ in uow.data.rows["transactions"])
    assert [d.user_id for d in uow.push_devices.devices.values()] == ["u2"]
    assert not [k for k in blobs.objects if "u1" in k]
    assert holding(blobs, "u1") == []  # the batch's chunk was rewritten without their rows…
    assert holding(blobs, "u2") == sorted(shared.keys)  # …and keeps u2's
    assert "'u1'" not in repr(uow._state())

    state = uow._state()
    again = await erase_user(EraseUser("u1"), uow, blobs, push)
    assert not again.consent_revoked
    assert again.objects_deleted == 0
    assert [e.type for e in uow.published[-2:]] == ["user.erasure_requested", "profile.user_erased"]
    # Forgetting the published events that mention u1 keeps the first confirmation: it names nobody.
    assert confirmation in uow.published
    assert uow._state() == state
    assert push.deleted == [mine]


async def test_an_sns_failure_fails_the_erasure_and_asking_again_finishes_it(uow, blobs, push):
    await grant_consent(GrantConsent("u1"), uow)
    await register_push_device(RegisterPushDevice("u1", "tok-1", "ios"), uow)
    await uow.push_devices.set_endpoint("tok-1", await push.create_endpoint("ios", "tok-1"))
    endpoint = push.arn_of("tok-1")
    state, published = uow._state(), list(uow.published)
    push.failing = True

    with pytest.raises(TransientPushError):
        await erase_user(EraseUser("u1"), uow, blobs, push)

    assert uow._state() == state  # nothing was erased: the devices still know their endpoints
    assert uow.published == published
    push.failing = False
    await erase_user(EraseUser("u1"), uow, blobs, push)
    assert push.deleted == [endpoint]
    assert uow.push_devices.devices == {}
    assert uow.published[-1].type == "profile.user_erased"


async def test_erasure_deletes_the_users_uploads_still_waiting_to_be_parsed_and_their_bytes(uow, blobs, push):
    await grant_consent(GrantConsent("u1"), uow)
    uploads = Uploads(uow, blobs)
    own = await uploads.receive(user("u1"), "u1")
    batch = await uploads.receive({"users": [user("u1"), user("u2")]}, "u1-admin", operator=True)
    mine_as_operator = await uploads.receive({"users": [user("u2")]}, "u1", operator=True)
    assert own.source is not None
    assert own.source.name in blobs.objects

    await erase_user(EraseUser("u1"), uow, blobs, push)

    assert own.upload_id not in uow.uploads.uploads
    assert own.source.name not in blobs.objects
    # A batch import still to be parsed holds other users' data: it stays, parsed later (and fails for
    # the erased user's missing consent); where they uploaded it, the uploader is their pseudonym.
    assert uow.uploads.uploads[batch.upload_id].uploader_id == "u1-admin"
    assert uow.uploads.uploads[mine_as_operator.upload_id].uploader_id == pseudonym("u1")
    assert await uploads.process(own.upload_id) is None
