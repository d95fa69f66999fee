"""Receiving uploads (a claim check: stored, not parsed), processing them as the worker does (parse →
ingest, or fail with the reason), and following their progress — on the in-memory unit of work, data
bucket, received-bytes store and an in-process parser."""

from __future__ import annotations

import asyncio
import json
from datetime import date
from typing import Any

import pytest
from plaid_files import tx, user
from unit.fakes import FakeProfileUnitOfWork, Uploads

from spendsense_profile.domain.commands import GetUpload, GrantConsent, ReceiveUpload, RevokeConsent
from spendsense_profile.domain.uploads import (
    BudgetExceeded,
    ParserCrashed,
    Upload,
    UploadRejected,
    source_name,
)
from spendsense_profile.handlers.consent import grant_consent, revoke_consent
from spendsense_profile.handlers.uploads import (
    get_upload,
    receive_upload,
    record_personas,
    record_progress,
    record_recommended,
)
from spendsense_shared.dataset import TABLES, chunk_snapshot_key, from_parquet
from spendsense_shared.messaging.catalog import (
    ConsentRevoked,
    EventData,
    GeneratedForUser,
    PersonaAssigned,
    PersonasAssigned,
    RecommendationsBatchGenerated,
    RecommendationsGenerated,
    UploadFailed,
    new_event,
)
from spendsense_shared.messaging.claim_check import ClaimCheck
from spendsense_shared.testing.events import assigned_together as together
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


def assert_only_the_row_is_left(
    uow: FakeProfileUnitOfWork, blobs: InMemoryBlobStore, uploads: Uploads
) -> None:
    """A failed upload: its row and reason, and nothing else anywhere."""
    assert all(rows == {} for rows in uow.data.rows.values())
    assert blobs.objects == {}
    assert uploads.sources.objects == {}
    assert uow.published == []
    for upload in uow.uploads.uploads.values():
        assert (upload.status, upload.user_ids, upload.users, upload.keys, upload.source) == (
            "failed",
            [],
            [],
            [],
            None,
        )


async def failure_of(
    uploads: Uploads, body: Any, actor: str = "u1", *, operator: bool = False
) -> dict[str, Any]:
    upload = await uploads.ingest(body, actor, operator=operator)
    assert upload.status == "failed", upload
    assert upload.error is not None
    return upload.error


# -- receiving: stored as it streams in, recorded, nothing parsed --------------------------------------------


async def test_an_upload_is_received_stored_and_recorded_without_being_parsed(uow, blobs, uploads):
    await grant(uow, "u1")

    upload = await uploads.receive(user("u1"))

    assert upload.upload_id.startswith("up_")
    assert (upload.status, upload.uploader_id, upload.uploader_is_operator) == ("received", "u1", False)
    assert upload.source is not None
    assert upload.source.name == source_name(upload.upload_id)
    assert uploads.sources.objects[upload.source.name] == json.dumps(user("u1")).encode()
    assert upload.size_bytes == len(uploads.sources.objects[upload.source.name])
    stored = uow.uploads.uploads[upload.upload_id]
    assert (stored.status, stored.users, stored.user_ids) == ("received", [], [])
    assert uow.uploads.notified == [upload.upload_id]  # the worker is woken
    assert uploads.parser.calls == 0
    assert all(rows == {} for rows in uow.data.rows.values())
    assert uow.published == []


async def test_a_user_without_consent_is_refused_before_anything_is_stored(uow, uploads):
    with pytest.raises(UploadRejected) as raised:
        await uploads.receive(user("u1"))
    assert (raised.value.status, raised.value.code, raised.value.details) == (
        403,
        "consent_required",
        {"user_ids": ["u1"]},
    )
    assert uploads.sources.objects == {}
    assert uow.uploads.uploads == {}


async def test_an_operators_batch_import_is_received_whoever_has_consented(uow, uploads):
    upload = await uploads.receive(batch("u1", "u2"), "ops", operator=True)
    assert (upload.status, upload.uploader_is_operator) == ("received", True)


@pytest.mark.parametrize("body", [b"", b"   \n\r\n\t ", b"\xef\xbb\xbf\n\n"])
async def test_a_blank_body_is_refused_422_and_nothing_is_stored(uow, uploads, body):
    await grant(uow, "u1")
    with pytest.raises(UploadRejected) as raised:
        await uploads.receive(body)
    assert (raised.value.status, raised.value.code) == (422, "invalid_upload")
    assert raised.value.details == [{"field": "body", "reason": "the upload is empty"}]
    assert uploads.sources.objects == {}
    assert uow.uploads.uploads == {}


async def test_a_body_over_the_limit_is_refused_413_as_it_streams_and_nothing_is_stored(uow, uploads):
    await grant(uow, "u1")
    seen = []

    class Endless:
        filename, content_type = None, "application/json"

        async def chunks(self):
            while True:
                seen.append(1)
                yield b"[" * 1024

    cmd = ReceiveUpload(actor_id="u1", actor_is_operator=False, body=Endless())
    with pytest.raises(UploadRejected) as raised:
        await receive_upload(cmd, uow, uploads.sources, 10 * 1024)
    assert (raised.value.status, raised.value.code) == (413, "payload_too_large")
    assert len(seen) == 11  # stopped at the chunk that went over, not at the end (there is none)
    assert uploads.sources.objects == {}
    assert uow.uploads.uploads == {}


# -- processing: ingested, all or nothing ---------------------------------------------------------------------


async def test_an_upload_is_merged_snapshotted_recorded_and_announced(uow, blobs, uploads):
    await grant(uow, "u1")

    result = await uploads.ingest(user("u1"))

    assert result.status == "ingested"
    assert result.user_ids == ["u1"]
    assert result.counts == {
        "accounts": 2,
        "transactions": 2,
        "credit_liabilities": 1,
        "removed_transactions": 0,
    }
    assert sorted(t for _, t in uow.data.rows["transactions"]) == ["t1", "t2"]
    # One Parquet snapshot per table (for the upload's one chunk of users), holding the user's stored rows.
    assert sorted(blobs.objects) == sorted(chunk_snapshot_key(result.upload_id, "0000", t) for t in TABLES)
    snapshot = from_parquet(blobs.objects[chunk_snapshot_key(result.upload_id, "0000", "transactions")])
    assert sorted(snapshot["transaction_id"].to_pylist()) == ["t1", "t2"]

    upload = uow.uploads.uploads[result.upload_id]
    assert (upload.uploader_id, upload.status, upload.format, upload.attempts) == (
        "u1",
        "ingested",
        "json",
        1,
    )
    assert [(u.user_id, u.stage) for u in upload.users] == [("u1", "ingested")]
    assert sorted(upload.keys) == sorted(blobs.objects)
    assert upload.source is None  # the received bytes are deleted once ingested
    assert uploads.sources.deleted == [f"uploads/{result.upload_id}/source"]
    [event] = uow.published
    assert event.type == "upload.ingested"
    assert event.user_id == "u1"
    assert event.data["upload_id"] == result.upload_id
    assert event.data["bucket"] == blobs.bucket
    assert sorted(event.data["keys"]) == sorted(blobs.objects)


async def test_new_users_are_snapshotted_from_the_upload_and_known_ones_from_what_is_stored(
    uow, blobs, uploads
):
    await grant(uow, "u1")
    await uploads.ingest(user("u1", transactions=[tx("t1"), tx("t2", amount=20.0)]))
    assert uow.data.snapshots_read == 0  # nothing else was stored of u1: the rows are the upload's

    second = await uploads.ingest(user("u1", transactions=[tx("t3")]))
    assert uow.data.snapshots_read == 1
    snapshot = from_parquet(blobs.objects[chunk_snapshot_key(second.upload_id, "0000", "transactions")])
    assert sorted(snapshot["transaction_id"].to_pylist()) == ["t1", "t2", "t3"]


async def test_processing_again_changes_nothing(uow, blobs, uploads):
    await grant(uow, "u1")
    result = await uploads.ingest(user("u1"))
    before = (dict(blobs.objects), list(uow.published), uploads.parser.calls)

    again = await uploads.process(result.upload_id)

    assert again is not None
    assert again.status == "ingested"
    assert (dict(blobs.objects), list(uow.published), uploads.parser.calls) == before
    assert await uploads.process("up_unknown") is None


async def test_a_second_upload_updates_rows_and_snapshots_the_whole_history(uow, blobs, uploads):
    await grant(uow, "u1")
    first = await uploads.ingest(user("u1", transactions=[tx("t1"), tx("t2", amount=20.0)]))
    second = await uploads.ingest(user("u1", transactions=[tx("t1", amount=99.0), tx("t3")]))

    stored = {t: (r["amount"], r["upload_id"]) for (_, t), r in uow.data.rows["transactions"].items()}
    assert stored == {
        "t1": (99.0, second.upload_id),
        "t2": (20.0, first.upload_id),
        "t3": (12.5, second.upload_id),
    }
    latest = from_parquet(blobs.objects[chunk_snapshot_key(second.upload_id, "0000", "transactions")])
    assert sorted(latest["transaction_id"].to_pylist()) == ["t1", "t2", "t3"]


async def test_an_operator_imports_a_batch_and_its_chunk_of_users_shares_one_snapshot_per_table(
    uow, blobs, uploads
):
    await grant(uow, "u1", "u2")

    result = await uploads.ingest(batch("u2", "u1"), "ops", operator=True)

    assert result.user_ids == ["u1", "u2"]
    assert len(blobs.objects) == len(TABLES)  # one object per table for the chunk, none per user
    key = chunk_snapshot_key(result.upload_id, "0000", "transactions")
    assert set(from_parquet(blobs.objects[key])["user_id"].to_pylist()) == {"u1", "u2"}
    assert not [k for k in blobs.objects if "u1" in k or "u2" in k]
    [event] = uow.published
    assert event.user_id is None  # several users: the envelope names none of them
    assert event.data["user_ids"] == ["u1", "u2"]
    upload = uow.uploads.uploads[result.upload_id]
    assert (upload.uploader_id, [u.user_id for u in upload.users]) == ("ops", ["u1", "u2"])


async def test_a_bare_plaid_body_belongs_to_the_uploader(uow, uploads):
    await grant(uow, "u1")
    result = await uploads.ingest(user(None))
    assert result.user_ids == ["u1"]


async def test_foreign_currencies_are_converted_with_the_injected_rates(uow, blobs, uploads):
    await grant(uow, "u1")
    body = user("u1", transactions=[tx("t1", amount=10.0, iso_currency_code="EUR")])
    error = await failure_of(uploads, body)
    assert error["code"] == "invalid_upload"

    uploads.parser.fx_rates = {"EUR": 2.0}
    await uploads.ingest(body)
    [row] = [r for (_, t), r in uow.data.rows["transactions"].items() if t == "t1"]
    assert row["amount"] == 20.0


# -- processing: failed with the reason, nothing kept but the row --------------------------------------------


async def test_a_consent_revoked_after_the_upload_was_received_fails_it_unparsed(uow, blobs, uploads):
    await grant(uow, "u1")
    received = await uploads.receive(user("u1"))
    await revoke_consent(RevokeConsent("u1"), uow)
    uow.published.clear()

    upload = await uploads.process(received.upload_id)

    assert upload is not None
    assert upload.error == {
        "code": "consent_required",
        "message": "no current consent for 1 user(s)",
        "details": {"user_ids": ["u1"]},
    }
    assert uploads.parser.calls == 0
    assert_only_the_row_is_left(uow, blobs, uploads)


async def test_a_batch_with_a_user_without_consent_fails_naming_them(uow, blobs, uploads):
    await grant(uow, "u1", "u3")
    error = await failure_of(uploads, batch("u1", "u2", "u3"), "ops", operator=True)
    assert (error["code"], error["details"]) == ("consent_required", {"user_ids": ["u2"]})
    assert_only_the_row_is_left(uow, blobs, uploads)


@pytest.mark.parametrize("users", [["u2"], ["u1", "u2"]])
async def test_a_user_cannot_upload_someone_elses_data(uow, blobs, uploads, users):
    await grant(uow, "u1", "u2")
    error = await failure_of(uploads, batch(*users), "u1")
    assert error["code"] == "forbidden"
    assert_only_the_row_is_left(uow, blobs, uploads)


async def test_an_invalid_upload_names_every_problem_and_stores_nothing(uow, blobs, uploads):
    await grant(uow, "u1")
    body = user("u1")
    body["accounts"][1]["type"] = "spaceship"
    body["transactions"][1]["amount"] = "40"

    error = await failure_of(uploads, body)

    assert error["code"] == "invalid_upload"
    assert {d["field"] for d in error["details"]} == {"accounts[1].type", "transactions[1].amount"}
    assert all(set(d) == {"field", "reason"} and d["reason"] for d in error["details"])
    assert "accounts[1].type" in error["message"]
    assert_only_the_row_is_left(uow, blobs, uploads)


@pytest.mark.parametrize(
    ("body", "code"),
    [
        (b'{"user_id": "u1", "accounts": [', "invalid_upload"),
        (b"{}", "invalid_upload"),
        (b'{"users": []}', "empty_upload"),
        (b'{"user_id": "u1", "accounts": [], "transactions": []}', "empty_upload"),
    ],
)
async def test_a_malformed_or_empty_upload_fails(uow, blobs, uploads, body, code):
    await grant(uow, "u1")
    error = await failure_of(uploads, body)
    assert error["code"] == code
    assert_only_the_row_is_left(uow, blobs, uploads)


@pytest.mark.parametrize(
    ("outcome", "error"),
    [
        (
            BudgetExceeded("decompressed_bytes", 1024),
            {
                "code": "budget_exceeded",
                "message": "parsing stopped: the upload exceeds its decompressed_bytes budget (1024)",
                "details": {"budget": "decompressed_bytes", "limit": 1024},
            },
        ),
        (
            BudgetExceeded("cpu_seconds", 2),
            {
                "code": "budget_exceeded",
                "message": "parsing stopped: the upload exceeds its cpu_seconds budget (2)",
                "details": {"budget": "cpu_seconds", "limit": 2},
            },
        ),
        (ParserCrashed("boom"), {"code": "parser_crashed", "message": "parsing failed: boom"}),
    ],
)
async def test_a_parse_stopped_by_a_budget_or_a_crash_fails_with_the_reason(
    uow, blobs, uploads, outcome, error
):
    await grant(uow, "u1")
    uploads.parser.outcome = outcome
    assert await failure_of(uploads, user("u1")) == error
    assert_only_the_row_is_left(uow, blobs, uploads)


async def test_a_failure_after_the_merge_leaves_nothing_behind_and_a_later_attempt_ingests(
    uow, blobs, uploads
):
    await grant(uow, "u1")
    received = await uploads.receive(user("u1"))
    put_many = blobs.put_many

    async def broken(*args: Any, **kwargs: Any) -> list[str]:
        raise OSError("bucket unavailable")

    blobs.put_many = broken  # type: ignore[method-assign]
    with pytest.raises(OSError, match="bucket unavailable"):
        await uploads.process(received.upload_id)
    assert all(rows == {} for rows in uow.data.rows.values())
    assert uow.published == []
    waiting = uow.uploads.uploads[received.upload_id]
    assert (waiting.status, waiting.attempts, waiting.source) == ("received", 1, received.source)

    blobs.put_many = put_many  # type: ignore[method-assign]
    upload = await uploads.process(received.upload_id)
    assert upload is not None
    assert (upload.status, upload.attempts) == ("ingested", 2)


async def test_a_merge_that_fails_while_the_snapshots_are_written_fails_the_attempt_and_the_next_ingests(
    uow, blobs, uploads
):
    """New users' snapshots are written while the merge runs: a failed merge fails the attempt (the
    write is awaited, nothing is announced) and the next attempt ingests."""
    await grant(uow, "u1")
    received = await uploads.receive(user("u1"))
    merge = uow.data.merge

    async def broken(*args: Any, **kwargs: Any) -> dict[str, int]:
        await asyncio.sleep(0)  # the snapshot write has started
        raise OSError("database gone")

    uow.data.merge = broken  # type: ignore[method-assign]
    with pytest.raises(OSError, match="database gone"):
        await uploads.process(received.upload_id)
    assert uow.published == []
    assert uow.uploads.uploads[received.upload_id].status == "received"

    uow.data.merge = merge  # type: ignore[method-assign]
    upload = await uploads.process(received.upload_id)
    assert upload is not None
    assert (upload.status, upload.attempts) == ("ingested", 2)
    assert sorted(upload.keys) == sorted(blobs.objects)


async def test_an_upload_whose_parse_never_finishes_fails_after_the_last_attempt(uow, blobs, uploads):
    await grant(uow, "u1")
    received = await uploads.receive(user("u1"))
    for _ in range(uploads.max_attempts):  # each attempt dies with the worker, mid-parse
        await uow.uploads.count_attempt(received.upload_id)

    upload = await uploads.process(received.upload_id)

    assert upload is not None
    assert upload.error == {
        "code": "processing_failed",
        "message": "parsing was started 3 times without finishing",
    }
    assert uploads.parser.calls == 0
    assert_only_the_row_is_left(uow, blobs, uploads)


# -- reading an upload ----------------------------------------------------------------------------------


async def test_the_uploader_involved_users_and_operators_see_an_upload_and_nobody_else(uow, uploads):
    await grant(uow, "u1", "u2")
    upload_id = (await uploads.ingest(batch("u1", "u2"), "ops", operator=True)).upload_id
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


async def test_the_uploader_sees_their_own_upload_from_the_moment_it_is_received(uow, uploads):
    await grant(uow, "u1")
    upload_id = (await uploads.receive(user("u1"))).upload_id
    seen = await get_upload(GetUpload(upload_id, "u1", actor_is_operator=False), uow)
    assert seen is not None
    assert (seen.status, seen.users) == ("received", [])
    assert await get_upload(GetUpload(upload_id, "u2", actor_is_operator=False), uow) is None

    await uploads.process(upload_id)
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


def assigned_together(upload_id: str | None, *user_ids: str) -> PersonasAssigned:
    """The users' assignments in one ``personas.assigned``, as features announces a chunk."""
    return together([assigned(upload_id, u) for u in user_ids])


def recommended(upload_id: str, user_id: str) -> RecommendationsGenerated:
    return RecommendationsGenerated(
        user_id=user_id, upload_id=upload_id, recommendation_ids=["r1"], persona="general_wellness"
    )


def recommended_together(upload_id: str | None, *user_ids: str) -> RecommendationsBatchGenerated:
    """The users' recommendations in one ``recommendations.batch_generated``, as the recommender announces
    a batch."""
    return RecommendationsBatchGenerated(
        upload_id=upload_id,
        generated=[
            GeneratedForUser(
                user_id=u, recommendation_ids=["r1"], persona="general_wellness", items_claim=None
            )
            for u in user_ids
        ],
    )


def failed(upload_id: str, user_id: str, reason: str = "consent_required") -> UploadFailed:
    return UploadFailed(upload_id=upload_id, user_id=user_id, stage="analysis", reason=reason)


async def deliver(uow: FakeProfileUnitOfWork, data: EventData) -> None:
    """As the consumer does: one unit of work per event, committed after the handler."""
    handler = (
        record_personas
        if isinstance(data, PersonasAssigned)
        else record_recommended
        if isinstance(data, RecommendationsBatchGenerated)
        else record_progress
    )
    async with uow:
        await handler(new_event(data, user_id=getattr(data, "user_id", None)), data, uow)
        await uow.commit()


def stages(uow: FakeProfileUnitOfWork, upload_id: str) -> tuple[str, list[tuple[str, str, str | None]]]:
    upload: Upload = uow.uploads.uploads[upload_id]
    return upload.status, [
        (u.user_id, u.stage, u.reason) for u in sorted(upload.users, key=lambda u: u.user_id)
    ]


@pytest.fixture
async def single(uow, uploads) -> str:
    await grant(uow, "u1")
    return (await uploads.ingest(user("u1"))).upload_id


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


async def test_a_batch_is_as_far_as_its_slowest_user(uow, uploads):
    await grant(uow, "u1", "u2")
    upload_id = (await uploads.ingest(batch("u1", "u2"), "ops", operator=True)).upload_id

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
    async with uow:
        with pytest.raises(TypeError):
            await record_personas(new_event(data), data, uow)


async def test_one_batch_announcement_moves_each_of_its_users_forward_and_only_forward(uow, uploads):
    await grant(uow, "u1", "u2", "u3")
    upload_id = (await uploads.ingest(batch("u1", "u2", "u3"), "ops", operator=True)).upload_id
    await deliver(uow, recommended(upload_id, "u2"))  # overtook the announcement on the bus
    await deliver(uow, failed(upload_id, "u3"))

    await deliver(uow, assigned_together(upload_id, "u1", "u2", "u3", "u9"))  # u9: not of this upload

    assert stages(uow, upload_id) == (
        "analyzed",
        [("u1", "analyzed", None), ("u2", "recommended", None), ("u3", "failed", "consent_required")],
    )


async def test_a_batch_announcement_and_a_per_user_one_of_the_same_users_agree(uow, uploads):
    """persona.assigned events published before the upgrade are still followed, alongside the batches."""
    await grant(uow, "u1", "u2")
    upload_id = (await uploads.ingest(batch("u1", "u2"), "ops", operator=True)).upload_id
    await deliver(uow, assigned(upload_id, "u1"))
    await deliver(uow, assigned_together(upload_id, "u1", "u2"))
    assert stages(uow, upload_id) == ("analyzed", [("u1", "analyzed", None), ("u2", "analyzed", None)])


async def test_a_batch_announcement_without_an_upload_changes_nothing(uow, single):
    before = stages(uow, single)
    await deliver(uow, assigned_together(None, "u1"))  # a re-score
    assert stages(uow, single) == before


async def test_one_batch_of_recommendations_moves_each_of_its_users_to_recommended(uow, uploads):
    await grant(uow, "u1", "u2", "u3")
    upload_id = (await uploads.ingest(batch("u1", "u2", "u3"), "ops", operator=True)).upload_id
    await deliver(uow, assigned_together(upload_id, "u1", "u2"))
    await deliver(uow, failed(upload_id, "u3"))

    await deliver(uow, recommended_together(upload_id, "u1", "u2", "u3", "u9"))  # u9: not of this upload

    assert stages(uow, upload_id) == (
        "recommended",
        [("u1", "recommended", None), ("u2", "recommended", None), ("u3", "failed", "consent_required")],
    )
    await deliver(uow, recommended_together(None, "u1"))  # not tied to an upload: nothing to follow
    async with uow:
        data = assigned_together(upload_id, "u1")
        with pytest.raises(TypeError):
            await record_recommended(new_event(data), data, uow)
