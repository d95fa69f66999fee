"""The right to be forgotten in the profile service: ``EraseUser`` revokes a current consent, deletes
every row and snapshot of the user — an upload of only theirs whole, their part of a shared batch
import — and publishes ``consent.revoked`` then ``user.erasure_requested`` in the same transaction;
asking again deletes nothing more and asks the other services again."""

from __future__ import annotations

import io
import json
from typing import Any

from plaid_files import tx, user
from unit.fakes import FakeProfileUnitOfWork

from spendsense_profile.domain.commands import (
    EraseUser,
    GetConsentHistory,
    GetProfile,
    GrantConsent,
    IngestUpload,
    RegisterPushDevice,
)
from spendsense_profile.handlers.consent import consent_history, grant_consent
from spendsense_profile.handlers.erasure import erase_user
from spendsense_profile.handlers.profile import get_profile, register_push_device
from spendsense_profile.handlers.uploads import ingest_upload
from spendsense_shared.testing.fakes import InMemoryBlobStore


async def ingest(uow: FakeProfileUnitOfWork, blobs: InMemoryBlobStore, body: Any, actor: str, operator=False):
    data = json.dumps(body).encode()
    cmd = IngestUpload(
        actor_id=actor,
        actor_is_operator=operator,
        source=io.BytesIO(data),
        size_bytes=len(data),
        content_type="application/json",
    )
    return await ingest_upload(cmd, uow, blobs, {})


def mentions(value: Any, user_id: str) -> bool:
    return user_id in json.dumps(value, default=str)


async def test_erasure_deletes_everything_of_the_user_and_keeps_the_others_part_of_a_shared_upload(
    uow, blobs
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
    await register_push_device(RegisterPushDevice("u2", "tok-2", "android"), uow)
    assert any(k.startswith("users/u1/") for k in blobs.objects)
    before = len(uow.published)

    outcome = await erase_user(EraseUser("u1"), uow, blobs)

    assert outcome.consent_revoked
    assert outcome.objects_deleted > 0
    assert [e.type for e in uow.published[-2:]] == ["consent.revoked", "user.erasure_requested"]
    assert len(uow.published) < before + 2  # the committed events naming u1 are forgotten
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
    assert not [k for k in blobs.objects if k.startswith("users/u1/")]
    assert [k for k in blobs.objects if k.startswith("users/u2/")]
    assert "'u1'" not in repr(uow._state())

    state = uow._state()
    again = await erase_user(EraseUser("u1"), uow, blobs)
    assert not again.consent_revoked
    assert again.objects_deleted == 0
    assert uow.published[-1].type == "user.erasure_requested"
    assert uow._state() == state
