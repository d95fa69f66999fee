"""The profile's reconciler against real PostgreSQL and the S3 emulator: an upload whose users stayed
``ingested`` (their ``upload.ingested`` lost, their snapshots gone with a restarted emulator) is announced
again with its snapshots rebuilt from the profile's tables; so is one whose users stayed ``analyzed`` (no
``recommendations.generated`` followed); users that moved on are left alone, and a second pass right after
the first does nothing (it waits again)."""

from __future__ import annotations

from spendsense_profile.adapters.unit_of_work import SqlProfileUnitOfWork
from spendsense_profile.handlers.reconcile import republish_stuck_uploads
from spendsense_shared.dataset import TABLES, from_parquet, table_of_key
from spendsense_shared.messaging.catalog import PersonaAssigned, RecommendationsGenerated
from spendsense_shared.storage import ObjectStore
from spendsense_shared.testing.events import assigned_together
from spendsense_shared.testing.fakes import load_beside

uploads_api = load_beside(__file__, "test_uploads_api.py", "spendsense_profile_tests_uploads_api")
data_bucket = uploads_api.data_bucket  # the fixtures, shared
profile = uploads_api.profile


def keys_name(keys: list[str], table: str) -> str:
    """The object of ``table`` among ``keys``, by its name under the profile's prefix."""
    [key] = [k for k in keys if table_of_key(k) == table]
    return key.removeprefix("profile/")


async def test_users_stuck_ingested_are_announced_again_with_their_snapshots_rebuilt(profile, data_bucket):
    await profile.grant("u1", "u2")
    response = await profile.upload("ops", "operator", fmt="jsonl", users=uploads_api.batch("u1", "u2"))
    upload_id = response.json()["upload_id"]
    [first] = await profile.upload_events()
    # u2 was analyzed; u1's announcement was lost, and every snapshot with the emulator's bucket.
    await profile.progress(assigned("u2", upload_id, data_bucket))
    await profile.progress(recommended("u2", upload_id))
    await profile.bucket.delete_prefix("")
    uow = profile.db.uow_factory(SqlProfileUnitOfWork)
    store = ObjectStore(profile.platform.aws, data_bucket, "profile")  # as the worker's bootstrap wires it

    assert await republish_stuck_uploads(uow, store, stuck_after_s=0) == 1

    events = await profile.upload_events()
    assert len(events) == 2
    again = events[1]
    assert again["id"] != first["id"]  # a new event: the features inbox takes it
    assert again["data"]["upload_id"] == upload_id
    assert again["data"]["user_ids"] == ["u1"]
    keys = sorted(again["data"]["keys"])
    # A chunk of its own (never over the first chunk, which u2's analysis still points at)…
    assert [table_of_key(k) for k in keys] == sorted(TABLES)
    assert not set(keys) & set(first["data"]["keys"])
    assert all(k.startswith(f"profile/uploads/{upload_id}/snapshots/again-") for k in keys)
    assert await profile.objects() == keys  # …rebuilt from the profile's tables, with u1's rows only
    snapshot = from_parquet(await store.get(keys_name(keys, "transactions")))
    assert set(snapshot["user_id"].to_pylist()) == {"u1"}
    async with uow() as unit:  # kept with the upload's keys, for an erasure to find
        upload = await unit.uploads.get(upload_id)
    assert upload is not None
    assert set(keys) <= set(upload.keys)
    # Just announced: not stuck again until the wait has passed once more.
    assert await republish_stuck_uploads(uow, store, stuck_after_s=60) == 0
    assert len(await profile.upload_events()) == 2


async def test_users_stuck_analyzed_without_recommendations_are_announced_again(profile, data_bucket):
    await profile.grant("u1", "u2", "u3")
    response = await profile.upload("ops", "operator", fmt="jsonl", users=uploads_api.batch("u1", "u2", "u3"))
    upload_id = response.json()["upload_id"]
    # analyzed: one announcement for the chunk, as features publishes it
    await profile.progress(
        assigned_together([assigned(u, upload_id, data_bucket) for u in ("u1", "u2", "u3")])
    )
    await profile.progress(recommended("u3", upload_id))  # u1 and u2: their recommendations were lost
    uow = profile.db.uow_factory(SqlProfileUnitOfWork)
    store = ObjectStore(profile.platform.aws, data_bucket, "profile")

    assert await republish_stuck_uploads(uow, store, stuck_after_s=0) == 2

    events = await profile.upload_events()
    assert len(events) == 2
    assert events[1]["data"]["upload_id"] == upload_id
    assert events[1]["data"]["user_ids"] == ["u1", "u2"]
    assert (await profile.status(upload_id))["status"] != "recommended"  # still waiting for them
    assert await republish_stuck_uploads(uow, store, stuck_after_s=60) == 0


def assigned(user_id: str, upload_id: str, bucket: str) -> PersonaAssigned:
    return PersonaAssigned(
        user_id=user_id,
        upload_id=upload_id,
        as_of="2026-11-05",
        rule_set_version="v1",
        personas={"30d": "none", "180d": "none"},
        matched={"30d": [], "180d": []},
        details={"bucket": bucket, "key": "k", "sha256": "0" * 64, "size_bytes": 1},
    )


def recommended(user_id: str, upload_id: str) -> RecommendationsGenerated:
    return RecommendationsGenerated(
        user_id=user_id, upload_id=upload_id, recommendation_ids=["r1"], persona="none", items=[]
    )
