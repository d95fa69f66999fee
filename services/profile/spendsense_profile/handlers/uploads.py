"""Use cases: ingest an upload (validate → merge → Parquet snapshot → ``upload.ingested``, all or nothing)
and follow its progress through the pipeline from the events of the services downstream."""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass, field
from typing import IO, Any

from sqlalchemy import func, select, update
from sqlalchemy.dialects.postgresql import insert

from spendsense_profile.adapters.data_store import DataStore
from spendsense_profile.adapters.orm import upload_users, uploads
from spendsense_profile.adapters.repository import ConsentRepository
from spendsense_profile.adapters.snapshots import write_snapshots
from spendsense_profile.domain.ingest import ParsedUpload, parse_upload
from spendsense_profile.domain.uploads import advances, upload_status
from spendsense_shared.db import UnitOfWork
from spendsense_shared.messaging.catalog import (
    EventData,
    PersonaAssigned,
    RecommendationsGenerated,
    UploadFailed,
    UploadIngested,
    new_event,
)
from spendsense_shared.messaging.envelope import EventEnvelope
from spendsense_shared.platform import Platform
from spendsense_shared.security import Principal, Role
from spendsense_shared.storage import ObjectStore


class UploadRejected(Exception):
    def __init__(self, status: int, code: str, message: str, details: Any = None):
        super().__init__(message)
        self.status, self.code, self.details = status, code, details


@dataclass
class IngestResult:
    upload_id: str
    status: str
    user_ids: list[str]
    counts: dict[str, int]
    notes: list[str] = field(default_factory=list)


def data_store(platform: Platform) -> ObjectStore:
    return ObjectStore(platform.aws, platform.topology.buckets["data"], "profile")


async def ingest(
    platform: Platform,
    principal: Principal,
    source: IO[bytes],
    *,
    filename: str | None,
    content_type: str | None,
    size_bytes: int,
    fx_rates: dict[str, float],
) -> IngestResult:
    parsed: ParsedUpload = await asyncio.to_thread(
        parse_upload,
        source,
        filename=filename,
        content_type=content_type,
        fx_rates=fx_rates,
        default_user_id=principal.user_id,
    )
    if not parsed.ok:
        details = [{"field": p.path, "reason": p.reason} for p in parsed.problems]
        message = "; ".join(f"{d['field']}: {d['reason']}" for d in details[:5])
        raise UploadRejected(422, "invalid_upload", message, details)
    user_ids = sorted(parsed.user_ids)
    if not user_ids:
        raise UploadRejected(422, "invalid_upload", "users: the upload contains no user")
    if not principal.has_role(Role.operator) and user_ids != [principal.user_id]:
        raise UploadRejected(403, "forbidden", "user_id: a user may upload only their own data")
    upload_id = f"up_{uuid.uuid4().hex}"
    async with platform.database.uow() as uow:
        await _require_consent(uow, user_ids)
        store = DataStore(uow.session)
        counts = await store.merge(parsed.tables, upload_id)
        counts["removed_transactions"] = await store.remove_transactions(parsed.removed_transaction_ids)
        snapshot = await store.snapshot(user_ids)
        keys = await write_snapshots(data_store(platform), upload_id, snapshot, user_ids)
        await _record_upload(uow, upload_id, principal, parsed, user_ids, counts, keys, filename, size_bytes)
        uow.publish(
            new_event(
                UploadIngested(
                    upload_id=upload_id,
                    user_ids=user_ids,
                    bucket=platform.topology.buckets["data"],
                    keys=keys,
                    as_of=parsed.as_of,
                ),
                user_id=user_ids[0] if len(user_ids) == 1 else None,
            )
        )
        await uow.commit()
    return IngestResult(upload_id, "ingested", user_ids, counts, list(parsed.notes))


async def _require_consent(uow: UnitOfWork, user_ids: list[str]) -> None:
    repo = ConsentRepository(uow.session)
    missing = [u for u in user_ids if await repo.current(u) is None]
    if missing:
        raise UploadRejected(
            403,
            "consent_required",
            f"no current consent for {len(missing)} user(s)",
            {"user_ids": missing[:100]},
        )


async def _record_upload(
    uow: UnitOfWork,
    upload_id: str,
    principal: Principal,
    parsed: ParsedUpload,
    user_ids: list[str],
    counts: dict[str, int],
    keys: list[str],
    filename: str | None,
    size_bytes: int,
) -> None:
    await uow.session.execute(
        insert(uploads).values(
            upload_id=upload_id,
            uploader_id=principal.user_id,
            status="ingested",
            format=parsed.format,
            size_bytes=size_bytes,
            user_ids=user_ids,
            counts=counts,
            notes=list(parsed.notes),
            as_of=parsed.as_of,
            keys=keys,
        )
    )
    await uow.session.execute(
        insert(upload_users), [{"upload_id": upload_id, "user_id": u, "stage": "ingested"} for u in user_ids]
    )


async def record_progress(envelope: EventEnvelope, data: EventData, uow: UnitOfWork) -> None:
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
    # Lock the upload first: concurrent events for its users must recompute its status one at a time.
    locked = await uow.session.execute(
        select(uploads.c.upload_id).where(uploads.c.upload_id == upload_id).with_for_update()
    )
    if locked.first() is None:
        return
    row = (
        await uow.session.execute(
            select(upload_users.c.stage)
            .where(upload_users.c.upload_id == upload_id, upload_users.c.user_id == user_id)
            .with_for_update()
        )
    ).first()
    if row is None or not advances(row.stage, stage):
        return
    await uow.session.execute(
        update(upload_users)
        .where(upload_users.c.upload_id == upload_id, upload_users.c.user_id == user_id)
        .values(stage=stage, reason=reason, updated_at=func.now())
    )
    stages = (
        await uow.session.execute(
            select(upload_users.c.user_id, upload_users.c.stage, upload_users.c.reason).where(
                upload_users.c.upload_id == upload_id
            )
        )
    ).all()
    status, error = upload_status([(r.user_id, r.stage, r.reason) for r in stages])
    await uow.session.execute(
        update(uploads)
        .where(uploads.c.upload_id == upload_id)
        .values(status=status, error=error, updated_at=func.now())
    )
