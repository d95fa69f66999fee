"""The profile's reconciler: uploads whose users were never analyzed, or analyzed but never recommended,
are announced again.

The profile follows every user of an upload through the pipeline (``upload_users``): a user still
``ingested`` long after the upload was (its ``upload.ingested`` lost with a restarted emulator, or its
snapshots gone with the emulator's bucket), or still ``analyzed`` (its ``personas.assigned`` or the
recommender's ``recommendations.batch_generated`` lost), is stuck. The stuck users' snapshots are written
again from the profile's own tables (the source of truth; the Parquet files are derived data), as chunks
of their own (never over a chunk other users' analyses point at; their keys are added to the upload's,
for an erasure to find), and ``upload.ingested`` is published again for those users. The features
service analyzes a user once per upload: for a user it analyzed already it publishes ``personas.assigned``
again from its stored analysis, and the recommender derives the same recommendations again, so
announcing again never analyzes or recommends twice.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable

from spendsense_profile.domain.uploads import chunk_names, ingested_events, user_chunks
from spendsense_profile.handlers.snapshots import write_snapshots
from spendsense_profile.handlers.unit_of_work import ProfileUnitOfWork
from spendsense_shared.blobs import BlobStore
from spendsense_shared.logging import get_logger
from spendsense_shared.messaging.catalog import new_event

log = get_logger(__name__)

STUCK_USERS_PER_PASS = 1000
# The stages a user can be stuck at, and why (logged): what should have followed did not.
STUCK_STAGES = {"ingested": "not_analyzed", "analyzed": "not_recommended"}


async def republish_stuck_uploads(
    uow: Callable[[], ProfileUnitOfWork], data_bucket: BlobStore, stuck_after_s: float
) -> int:
    """Announce again the uploads whose users stayed ``ingested`` or ``analyzed`` for ``stuck_after_s``;
    returns how many users were announced again."""
    announced = 0
    for stage in STUCK_STAGES:
        async with uow() as unit:
            stuck = await unit.uploads.stuck(stage, stuck_after_s, STUCK_USERS_PER_PASS)
        for upload_id, user_ids in stuck.items():
            announced += await _announce_again(uow(), data_bucket, upload_id, user_ids, stage)
    return announced


async def _announce_again(
    unit: ProfileUnitOfWork, data_bucket: BlobStore, upload_id: str, user_ids: list[str], stage: str
) -> int:
    async with unit:
        upload = await unit.uploads.get(upload_id, for_update=True)
        if upload is None or upload.status == "failed":
            return 0
        still = sorted(u.user_id for u in upload.users if u.user_id in set(user_ids) and u.stage == stage)
        if not still:
            return 0
        snapshot = await unit.data.snapshot(still)
        chunks = user_chunks(still)
        names = chunk_names(len(chunks), attempt=f"again-{uuid.uuid4().hex[:12]}")
        keys = await write_snapshots(data_bucket, upload_id, snapshot, chunks, names)
        upload.keys = [*upload.keys, *(k for chunk in keys for k in chunk)]  # for an erasure to find them
        await unit.uploads.save(upload)
        for event in ingested_events(upload_id, chunks, data_bucket.bucket, keys, upload.as_of):
            unit.publish(new_event(event, user_id=still[0] if len(still) == 1 else None))
        await unit.uploads.touch_stage(upload_id, still)
        await unit.commit()
    log.warning("upload_announced_again", upload=upload_id, users=len(still), reason=STUCK_STAGES[stage])
    return len(still)
