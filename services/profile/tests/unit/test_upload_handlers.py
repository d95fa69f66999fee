"""Ingesting uploads and following their progress, on the in-memory unit of work and blob store."""

from __future__ import annotations

import io
import json
from datetime import date
from typing import Any

import pytest
from plaid_files import tx, user
from unit.fakes import FakeProfileUnitOfWork

from spendsense_profile.domain.commands import GetUpload, GrantConsent, IngestUpload, RevokeConsent
from spendsense_profile.domain.uploads import Upload, UploadRejected
from spendsense_profile.handlers.consent import grant_consent, revoke_consent
from spendsense_profile.handlers.uploads import get_upload, ingest_upload, record_progress
from spendsense_shared.dataset import TABLES, from_parquet
from spendsense_shared.messaging.catalog import (
    ConsentRevoked,
    EventData,
    PersonaAssigned,
    RecommendationsGenerated,
    UploadFailed,
    new_event,
)
from spendsense_shared.messaging.claim_check import ClaimCheck
from spendsense_shared.testing.fakes import InMemoryBlobStore


async def grant(uow: FakeProfileUnitOfWork, *users: str) -> None:
    for user_id in users:
        await grant_consent(GrantConsent(user_id), uow)
    uow.published.clear()


def batch(*user_ids: str) -> dict[str, Any]:
    """Several users in one upload (transaction ids are unique across an upload)."""
    return {
        "users": [
            user(u, transactions=[tx(f"{u}-t1"), tx(f"{u}-t2", "acc_card", amount=-40.0)]) for u in user_ids
        ]
    }


async def ingest(
    uow: FakeProfileUnitOfWork,
    blobs: InMemoryBlobStore,
    body: Any,
    actor: str = "u1",
    *,
    operator: bool = False,
    fx_rates: dict[str, float] | None = None,
):
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    cmd = IngestUpload(
        actor_id=actor,
        actor_is_operator=operator,
        source=io.BytesIO(data),
        size_bytes=len(data),
        content_type="application/json",
    )
    return await ingest_upload(cmd, uow, blobs, fx_rates or {})


def assert_nothing_stored(uow: FakeProfileUnitOfWork, blobs: InMemoryBlobStore) -> None:
    assert all(rows == {} for rows in uow.data.rows.values())
    assert uow.uploads.uploads == {}
    assert blobs.objects == {}
    assert uow.published == []


# -- ingesting ------------------------------------------------------------------------------------------


async def test_an_upload_is_merged_snapshotted_recorded_and_announced(uow, blobs):
    await grant(uow, "u1")

    result = await ingest(uow, blobs, user("u1"))

    assert result.status == "ingested"
    assert result.upload_id.startswith("up_")
    assert result.user_ids == ["u1"]
    assert result.counts == {
        "accounts": 2,
        "transactions": 2,
        "credit_liabilities": 1,
        "removed_transactions": 0,
    }
    assert sorted(t for _, t in uow.data.rows["transactions"]) == ["t1", "t2"]
    # One Parquet snapshot per table, holding the user's stored rows.
    prefix = f"users/u1/uploads/{result.upload_id}"
    assert sorted(blobs.objects) == sorted(f"{prefix}/{name}.parquet" for name in TABLES)
    snapshot = from_parquet(blobs.objects[f"{prefix}/transactions.parquet"])
    assert sorted(snapshot["transaction_id"].to_pylist()) == ["t1", "t2"]

    upload = uow.uploads.uploads[result.upload_id]
    assert (upload.uploader_id, upload.status, upload.format) == ("u1", "ingested", "json")
    assert [(u.user_id, u.stage) for u in upload.users] == [("u1", "ingested")]
    assert sorted(upload.keys) == sorted(blobs.objects)
    [event] = uow.published
    assert event.type == "upload.ingested"
    assert event.user_id == "u1"
    assert event.data["upload_id"] == result.upload_id
    assert event.data["bucket"] == blobs.bucket
    assert sorted(event.data["keys"]) == sorted(blobs.objects)
    assert uow.commits == 2  # the grant, the upload


async def test_a_second_upload_updates_rows_and_snapshots_the_whole_history(uow, blobs):
    await grant(uow, "u1")
    first = await ingest(uow, blobs, user("u1", transactions=[tx("t1"), tx("t2", amount=20.0)]))
    second = await ingest(uow, blobs, user("u1", transactions=[tx("t1", amount=99.0), tx("t3")]))

    stored = {t: (r["amount"], r["upload_id"]) for (_, t), r in uow.data.rows["transactions"].items()}
    assert stored == {
        "t1": (99.0, second.upload_id),
        "t2": (20.0, first.upload_id),
        "t3": (12.5, second.upload_id),
    }
    latest = from_parquet(blobs.objects[f"users/u1/uploads/{second.upload_id}/transactions.parquet"])
    assert sorted(latest["transaction_id"].to_pylist()) == ["t1", "t2", "t3"]


async def test_an_operator_imports_a_batch_and_each_user_gets_their_own_snapshot(uow, blobs):
    await grant(uow, "u1", "u2")

    result = await ingest(uow, blobs, batch("u2", "u1"), "ops", operator=True)

    assert result.user_ids == ["u1", "u2"]
    assert len(blobs.objects) == 2 * len(TABLES)
    for user_id in ("u1", "u2"):
        key = f"users/{user_id}/uploads/{result.upload_id}/transactions.parquet"
        assert set(from_parquet(blobs.objects[key])["user_id"].to_pylist()) == {user_id}
    [event] = uow.published
    assert event.user_id is None  # several users: the envelope names none of them
    assert event.data["user_ids"] == ["u1", "u2"]
    upload = uow.uploads.uploads[result.upload_id]
    assert (upload.uploader_id, [u.user_id for u in upload.users]) == ("ops", ["u1", "u2"])


async def test_a_bare_plaid_body_belongs_to_the_uploader(uow, blobs):
    await grant(uow, "u1")
    result = await ingest(uow, blobs, user(None))
    assert result.user_ids == ["u1"]


async def test_foreign_currencies_are_converted_with_the_injected_rates(uow, blobs):
    await grant(uow, "u1")
    body = user("u1", transactions=[tx("t1", amount=10.0, iso_currency_code="EUR")])
    with pytest.raises(UploadRejected) as raised:
        await ingest(uow, blobs, body)
    assert raised.value.code == "invalid_upload"

    await ingest(uow, blobs, body, fx_rates={"EUR": 2.0})
    [row] = [r for (_, t), r in uow.data.rows["transactions"].items() if t == "t1"]
    assert row["amount"] == 20.0


@pytest.mark.parametrize(
    ("actor", "operator", "body", "granted", "missing"),
    [
        ("u1", False, user("u1"), [], ["u1"]),
        ("ops", True, batch("u1", "u2", "u3"), ["u1", "u3"], ["u2"]),
    ],
)
async def test_without_consent_an_upload_is_refused_and_nothing_is_stored(
    uow, blobs, actor, operator, body, granted, missing
):
    await grant(uow, *granted)
    with pytest.raises(UploadRejected) as raised:
        await ingest(uow, blobs, body, actor, operator=operator)
    assert (raised.value.status, raised.value.code) == (403, "consent_required")
    assert raised.value.details == {"user_ids": missing}
    assert_nothing_stored(uow, blobs)


async def test_a_revoked_consent_is_no_consent(uow, blobs):
    await grant(uow, "u1")
    await revoke_consent(RevokeConsent("u1"), uow)
    uow.published.clear()
    with pytest.raises(UploadRejected) as raised:
        await ingest(uow, blobs, user("u1"))
    assert raised.value.code == "consent_required"
    assert_nothing_stored(uow, blobs)


@pytest.mark.parametrize("users", [["u2"], ["u1", "u2"]])
async def test_a_user_cannot_upload_someone_elses_data(uow, blobs, users):
    await grant(uow, "u1", "u2")
    with pytest.raises(UploadRejected) as raised:
        await ingest(uow, blobs, batch(*users), "u1")
    assert (raised.value.status, raised.value.code) == (403, "forbidden")
    assert_nothing_stored(uow, blobs)


async def test_an_invalid_upload_names_every_problem_and_stores_nothing(uow, blobs):
    await grant(uow, "u1")
    body = user("u1")
    body["accounts"][1]["type"] = "spaceship"
    body["transactions"][1]["amount"] = "40"
    with pytest.raises(UploadRejected) as raised:
        await ingest(uow, blobs, body)
    assert (raised.value.status, raised.value.code) == (422, "invalid_upload")
    assert {d["field"] for d in raised.value.details} == {"accounts[1].type", "transactions[1].amount"}
    assert "accounts[1].type" in str(raised.value)
    assert_nothing_stored(uow, blobs)


@pytest.mark.parametrize("body", [b'{"user_id": "u1", "accounts": [', b"{}", b'{"users": []}'])
async def test_a_malformed_or_empty_upload_is_invalid(uow, blobs, body):
    await grant(uow, "u1")
    with pytest.raises(UploadRejected) as raised:
        await ingest(uow, blobs, body)
    assert (raised.value.status, raised.value.code) == (422, "invalid_upload")
    assert_nothing_stored(uow, blobs)


async def test_a_failure_after_the_merge_leaves_nothing_behind(uow, blobs):
    await grant(uow, "u1")

    async def broken(*args: Any, **kwargs: Any) -> list[str]:
        raise OSError("bucket unavailable")

    blobs.put_many = broken  # type: ignore[method-assign]
    with pytest.raises(OSError, match="bucket unavailable"):
        await ingest(uow, blobs, user("u1"))
    assert_nothing_stored(uow, blobs)


# -- reading an upload ----------------------------------------------------------------------------------


async def test_the_uploader_involved_users_and_operators_see_an_upload_and_nobody_else(uow, blobs):
    await grant(uow, "u1", "u2")
    upload_id = (await ingest(uow, blobs, batch("u1", "u2"), "ops", operator=True)).upload_id
    await deliver(uow, failed(upload_id, "u2"))

    whole = await get_upload(GetUpload(upload_id, "ops", actor_is_operator=True), uow)
    assert whole is not None
    assert [u.user_id for u in whole.users] == ["u1", "u2"]
    assert whole.error is not None
    assert whole.created_at is not None

    mine = await get_upload(GetUpload(upload_id, "u1", actor_is_operator=False), uow)
    assert mine is not None
    assert [u.user_id for u in mine.users] == ["u1"]  # not the other users of the batch
    assert mine.error is None

    assert await get_upload(GetUpload(upload_id, "u3", actor_is_operator=False), uow) is None
    assert await get_upload(GetUpload("up_missing", "ops", actor_is_operator=True), uow) is None


async def test_the_uploader_sees_their_own_upload(uow, blobs):
    await grant(uow, "u1")
    upload_id = (await ingest(uow, blobs, user("u1"))).upload_id
    seen = await get_upload(GetUpload(upload_id, "u1", actor_is_operator=False), uow)
    assert seen is not None
    assert [(u.user_id, u.stage, u.reason) for u in seen.users] == [("u1", "ingested", None)]


# -- progress --------------------------------------------------------------------------------------------


def assigned(upload_id: str | None, user_id: str) -> PersonaAssigned:
    return PersonaAssigned(
        user_id=user_id,
        upload_id=upload_id,
        as_of=date(2026, 11, 5),
        rule_set_version="v1",
        personas={"30d": "general_wellness", "180d": "general_wellness"},
        details=ClaimCheck(bucket="b", key=f"details/{user_id}.json", sha256="0" * 64, size_bytes=2),
    )


def recommended(upload_id: str, user_id: str) -> RecommendationsGenerated:
    return RecommendationsGenerated(
        user_id=user_id, upload_id=upload_id, recommendation_ids=["r1"], persona="general_wellness"
    )


def failed(upload_id: str, user_id: str, reason: str = "consent_required") -> UploadFailed:
    return UploadFailed(upload_id=upload_id, user_id=user_id, stage="analysis", reason=reason)


async def deliver(uow: FakeProfileUnitOfWork, data: EventData) -> None:
    """As the consumer does: one unit of work per event, committed after the handler."""
    async with uow:
        await record_progress(new_event(data, user_id=getattr(data, "user_id", None)), data, uow)
        await uow.commit()


def stages(uow: FakeProfileUnitOfWork, upload_id: str) -> tuple[str, list[tuple[str, str, str | None]]]:
    upload: Upload = uow.uploads.uploads[upload_id]
    return upload.status, [
        (u.user_id, u.stage, u.reason) for u in sorted(upload.users, key=lambda u: u.user_id)
    ]


@pytest.fixture
async def single(uow, blobs) -> str:
    await grant(uow, "u1")
    return (await ingest(uow, blobs, user("u1"))).upload_id


async def test_progress_events_move_an_upload_through_its_stages(uow, single):
    created = uow.uploads.uploads[single].updated_at
    await deliver(uow, assigned(single, "u1"))
    assert stages(uow, single) == ("analyzed", [("u1", "analyzed", None)])
    assert uow.uploads.uploads[single].updated_at > created

    await deliver(uow, recommended(single, "u1"))
    assert stages(uow, single) == ("recommended", [("u1", "recommended", None)])

    await deliver(uow, assigned(single, "u1"))  # late or repeated: never backwards
    assert stages(uow, single) == ("recommended", [("u1", "recommended", None)])


async def test_out_of_order_events_never_move_a_stage_backwards(uow, single):
    await deliver(uow, recommended(single, "u1"))  # overtook persona.assigned on the bus
    await deliver(uow, assigned(single, "u1"))
    assert stages(uow, single) == ("recommended", [("u1", "recommended", None)])


async def test_a_failure_is_recorded_with_its_reason_and_is_final(uow, single):
    await deliver(uow, failed(single, "u1", "no_transactions"))
    assert stages(uow, single) == ("failed", [("u1", "failed", "no_transactions")])
    assert uow.uploads.uploads[single].error == {
        "code": "user_failed",
        "failed_users": [{"user_id": "u1", "reason": "no_transactions"}],
    }
    for late in (assigned(single, "u1"), recommended(single, "u1"), failed(single, "u1", "other")):
        await deliver(uow, late)
    assert stages(uow, single) == ("failed", [("u1", "failed", "no_transactions")])


async def test_a_batch_is_as_far_as_its_slowest_user(uow, blobs):
    await grant(uow, "u1", "u2")
    upload_id = (await ingest(uow, blobs, batch("u1", "u2"), "ops", operator=True)).upload_id

    await deliver(uow, assigned(upload_id, "u1"))
    assert stages(uow, upload_id) == ("ingested", [("u1", "analyzed", None), ("u2", "ingested", None)])

    await deliver(uow, failed(upload_id, "u2"))
    assert stages(uow, upload_id)[0] == "analyzed"
    assert uow.uploads.uploads[upload_id].error == {
        "code": "user_failed",
        "failed_users": [{"user_id": "u2", "reason": "consent_required"}],
    }

    await deliver(uow, recommended(upload_id, "u1"))
    assert stages(uow, upload_id) == (
        "recommended",
        [("u1", "recommended", None), ("u2", "failed", "consent_required")],
    )


async def test_events_without_an_upload_or_for_another_upload_or_user_change_nothing(uow, single):
    before = stages(uow, single)
    for data in (assigned(None, "u1"), assigned("up_unknown", "u1"), assigned(single, "u9")):
        await deliver(uow, data)
    assert stages(uow, single) == before


async def test_the_progress_handler_refuses_other_events(uow):
    data = ConsentRevoked(user_id="u1", consent_id="c1", revoked_at="2026-01-01T00:00:00Z")
    with pytest.raises(TypeError):
        await deliver(uow, data)
