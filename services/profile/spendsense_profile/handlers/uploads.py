"""Use cases: ingest an upload (validate → merge → Parquet snapshot → ``upload.ingested``, all or nothing),
read its progress, and follow that progress from the events of the services downstream."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Mapping

from spendsense_profile.domain.commands import GetUpload, IngestUpload
from spendsense_profile.domain.ingest import ParsedUpload, parse_upload
from spendsense_profile.domain.uploads import IngestResult, Upload, UploadRejected, ingested_events
from spendsense_profile.handlers.snapshots import write_snapshots
from spendsense_profile.handlers.unit_of_work import ProfileUnitOfWork
from spendsense_shared.blobs import BlobStore
from spendsense_shared.messaging.catalog import (
    EventData,
    PersonaAssigned,
    RecommendationsGenerated,
    UploadFailed,
    new_event,
)
from spendsense_shared.messaging.envelope import EventEnvelope


async def ingest_upload(
    cmd: IngestUpload, uow: ProfileUnitOfWork, data_bucket: BlobStore, fx_rates: Mapping[str, float]
) -> IngestResult:
    parsed: ParsedUpload = await asyncio.to_thread(
        parse_upload,
        cmd.source,
        filename=cmd.filename,
        content_type=cmd.content_type,
        fx_rates=fx_rates,
        default_user_id=cmd.actor_id,
    )
    if not parsed.ok:
        details = [{"field": p.path, "reason": p.reason} for p in parsed.problems]
        message = "; ".join(f"{d['field']}: {d['reason']}" for d in details[:5])
        raise UploadRejected(422, "invalid_upload", message, details)
    user_ids = sorted(parsed.user_ids)
    if not user_ids:
        raise UploadRejected(422, "invalid_upload", "users: the upload contains no user")
    if not cmd.actor_is_operator and user_ids != [cmd.actor_id]:
        raise UploadRejected(403, "forbidden", "user_id: a user may upload only their own data")
    upload_id = f"up_{uuid.uuid4().hex}"
    async with uow:
        await _require_consent(uow, user_ids)
        counts = await uow.data.merge(parsed.tables, upload_id)
        counts["removed_transactions"] = await uow.data.remove_transactions(parsed.removed_transaction_ids)
        snapshot = await uow.data.snapshot(user_ids)
        keys = await write_snapshots(data_bucket, upload_id, snapshot, user_ids)
        await uow.uploads.add(
            Upload.ingested(
                upload_id,
                cmd.actor_id,
                size_bytes=cmd.size_bytes,
                user_ids=user_ids,
                counts=counts,
                notes=list(parsed.notes),
                keys=keys,
                format=parsed.format,
                as_of=parsed.as_of,
            )
        )
        for event in ingested_events(upload_id, user_ids, data_bucket.bucket, keys, parsed.as_of):
            uow.publish(new_event(event, user_id=user_ids[0] if len(user_ids) == 1 else None))
        await uow.commit()
    return IngestResult(upload_id, "ingested", user_ids, counts, list(parsed.notes))


async def _require_consent(uow: ProfileUnitOfWork, user_ids: list[str]) -> None:
    missing = [u for u in user_ids if await uow.consents.current(u) is None]
    if missing:
        raise UploadRejected(
            403,
            "consent_required",
            f"no current consent for {len(missing)} user(s)",
            {"user_ids": missing[:100]},
        )


async def get_upload(query: GetUpload, uow: ProfileUnitOfWork) -> Upload | None:
    async with uow:
        upload = await uow.uploads.get(query.upload_id)
    if upload is None:
        return None
    return upload.seen_by(query.actor_id, operator=query.actor_is_operator)


async def record_progress(envelope: EventEnvelope, data: EventData, uow: ProfileUnitOfWork) -> None:
    """persona.assigned / recommendations.generated / upload.failed → the user's stage for that upload."""
    if isinstance(data, PersonaAssigned):
        upload_id, user_id, stage, reason = data.upload_id, data.user_id, "analyzed", None
    elif isinstance(data, RecommendationsGenerated):
        upload_id, user_id, stage, reason = data.upload_id, data.user_id, "recommended", None
    elif isinstance(data, UploadFailed):
        upload_id, user_id, stage, reason = data.upload_id, data.user_id, "failed", data.reason
    else:
        raise TypeError(envelope.type)
    if upload_id is None:
        return  # e.g. a re-score, not tied to an upload
    upload = await uow.uploads.get(upload_id, for_update=True)
    if upload is None or not upload.advance(user_id, stage, reason):
        return
    await uow.uploads.save_progress(upload, user_id)
