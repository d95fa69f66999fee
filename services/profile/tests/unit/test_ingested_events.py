"""``upload.ingested`` stays small for a batch import of any size: one event per chunk of users, naming
that chunk's snapshot objects (one per table, shared by the chunk's users)."""

from __future__ import annotations

import json
from datetime import date

from spendsense_profile.domain.uploads import (
    USERS_PER_EVENT,
    chunk_names,
    ingested_events,
    user_chunks,
)
from spendsense_shared.dataset import chunk_snapshot_key, keys_of_user, user_of_key
from spendsense_shared.messaging.catalog import MAX_EVENT_BYTES, new_event

UPLOAD = "up_0123456789abcdef0123456789abcdef"


def keys_for(chunk: str, upload_id: str = UPLOAD) -> list[str]:
    return [
        f"profile/{chunk_snapshot_key(upload_id, chunk, t)}"
        for t in ("accounts", "transactions", "credit_liabilities")
    ]


def test_a_large_batch_is_announced_in_bounded_chunks_with_each_chunks_keys():
    users = [f"user-{i:05d}-".ljust(128, "x") for i in range(2_345)]  # the longest ids: the worst case
    chunks = user_chunks(users)
    names = chunk_names(len(chunks))
    events = ingested_events(
        UPLOAD, chunks, "spendsense-data-dev", [keys_for(n) for n in names], date(2026, 1, 31)
    )
    full, rest = divmod(len(users), USERS_PER_EVENT)
    assert [len(e.user_ids) for e in events] == [USERS_PER_EVENT] * full + [rest]
    assert [u for e in events for u in e.user_ids] == users
    assert len(set(names)) == len(names)
    for event, name in zip(events, names, strict=True):
        assert event.keys == keys_for(name)
        assert not [k for k in event.keys for u in event.user_ids if u in k]  # no key names a user
        assert len(json.dumps(new_event(event).model_dump(mode="json")).encode()) < MAX_EVENT_BYTES


def test_a_single_user_upload_is_one_event():
    [chunk] = user_chunks(["u1"])
    events = ingested_events("up1", [chunk], "b", [keys_for("0000", "up1")], None)
    assert len(events) == 1
    assert events[0].user_ids == ["u1"]
    assert events[0].keys == keys_for("0000", "up1")


def test_snapshots_written_again_get_chunk_names_of_their_own():
    again = chunk_names(2, attempt="again-abc")
    assert again == ["again-abc-0000", "again-abc-0001"]
    assert not set(again) & set(chunk_names(2))


def test_a_users_keys_are_their_chunks_and_their_own_per_user_keys():
    shared = keys_for("0000")
    legacy = [
        f"profile/users/u1/uploads/{UPLOAD}/accounts.parquet",
        f"profile/users/u2/uploads/{UPLOAD}/x.parquet",
    ]
    assert [user_of_key(k) for k in shared + legacy] == [None, None, None, "u1", "u2"]
    assert keys_of_user("u1", shared + legacy) == [*shared, legacy[0]]
