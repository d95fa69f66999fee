"""``upload.ingested`` stays small for a batch import of any size: one event per chunk of users."""

from __future__ import annotations

import json
from datetime import date

from spendsense_profile.domain.uploads import USERS_PER_EVENT, ingested_events
from spendsense_shared.messaging.catalog import MAX_EVENT_BYTES, new_event


def keys_for(user_id: str, upload_id: str = "up_0123456789abcdef0123456789abcdef") -> list[str]:
    return [
        f"profile/users/{user_id}/uploads/{upload_id}/{t}.parquet"
        for t in ("accounts", "transactions", "liabilities")
    ]


def test_a_large_batch_is_announced_in_bounded_chunks_with_each_users_keys():
    users = [f"user-{i:05d}-{'x' * 40}" for i in range(2_345)]  # long ids: the worst case for size
    keys = [k for u in users for k in keys_for(u)]
    events = ingested_events(
        "up_0123456789abcdef0123456789abcdef", users, "spendsense-data-dev", keys, date(2026, 1, 31)
    )
    assert [len(e.user_ids) for e in events] == [USERS_PER_EVENT] * 23 + [45]
    assert [u for e in events for u in e.user_ids] == users
    for event in events:
        assert event.keys == [k for u in event.user_ids for k in keys_for(u)]
        assert len(json.dumps(new_event(event).model_dump(mode="json")).encode()) < MAX_EVENT_BYTES


def test_a_single_user_upload_is_one_event():
    events = ingested_events("up1", ["u1"], "b", keys_for("u1", "up1"), None)
    assert len(events) == 1
    assert events[0].user_ids == ["u1"]
    assert events[0].keys == keys_for("u1", "up1")
