"""Finding 2 of the security review: a user in an operator's batch import read other users' data.

``GET /api/v1/uploads/{batch id}`` as one user of the batch showed ``notes`` naming every user's business
accounts and the batch-wide counts. Now such a user sees only their own progress: their own stage as
the status, no other user, no counts, no notes, no error, no size. The operator who imported it still
sees the whole batch.

Real PostgreSQL and S3 emulator; the upload parsed by the worker's upload jobs.
"""

from __future__ import annotations

import pytest

from spendsense_profile.bootstrap import SERVICE as PROFILE
from spendsense_shared.aws import Aws
from spendsense_shared.messaging.topology import build_topology
from spendsense_shared.testing.fakes import load_beside

support = load_beside(__file__, "content_support.py", "spendsense_content_support")


@pytest.fixture
async def profile(service_client, settings_for, isolation_id):
    async with Aws(settings_for("profile")).client("s3") as s3:
        await s3.create_bucket(Bucket=build_topology(isolation_id).buckets["data"])
    return support.ProfileApp(await service_client(PROFILE))


async def test_a_user_of_a_batch_import_sees_only_their_own_progress(profile):
    await profile.grant("alice", "bob", "carol")
    users = [support.plaid_user(u) for u in ("alice", "bob", "carol")]
    batch_id = await profile.upload("ops", "operator", users=users)

    whole = await profile.read_upload(batch_id, "ops", "operator")
    assert whole.status_code == 200, whole.text
    whole_body = whole.json()
    assert whole_body["status"] == "ingested"
    assert [u["user_id"] for u in whole_body["users"]] == ["alice", "bob", "carol"]
    assert any("bob-biz" in note for note in whole_body["notes"])  # the operator's view is complete
    assert whole_body["counts"]["transactions"] == 9

    mine = await profile.read_upload(batch_id, "alice", "user")
    assert mine.status_code == 200, mine.text
    body = mine.json()
    assert body["users"] == [{"user_id": "alice", "stage": "ingested", "reason": None}]
    assert body["status"] == "ingested"
    assert body["notes"] == []
    assert body["counts"] == {}
    assert body["error"] is None
    assert body["size_bytes"] == 0
    for other in ("bob", "carol"):
        assert other not in mine.text  # not an id, not an account id, not a count of theirs

    outsider = await profile.read_upload(batch_id, "mallory", "user")
    assert outsider.status_code == 404  # not in the batch: not even its existence
