"""``/api/v1/uploads``: Plaid-style data as a multipart file or a body (JSON, JSON Lines, CSV, zip)."""

from __future__ import annotations

import tempfile
from datetime import date, datetime
from typing import IO, Any, cast

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel
from sqlalchemy import select
from starlette.datastructures import UploadFile

from spendsense_profile.adapters.orm import upload_users, uploads
from spendsense_profile.handlers.uploads import UploadRejected, ingest
from spendsense_profile.settings import ProfileSettings
from spendsense_shared.http.errors import ApiError
from spendsense_shared.platform import Platform
from spendsense_shared.security import Principal, Role, current_principal

router = APIRouter(prefix="/api/v1/uploads", tags=["uploads"])
SPOOL_IN_MEMORY = 8 * 1024 * 1024  # bigger bodies spill to a temporary file while they stream in


class UploadAccepted(BaseModel):
    upload_id: str
    status: str
    user_ids: list[str]
    counts: dict[str, int]
    notes: list[str]


class UserProgress(BaseModel):
    user_id: str
    stage: str
    reason: str | None


class UploadOut(BaseModel):
    upload_id: str
    status: str
    error: dict[str, Any] | None
    users: list[UserProgress]
    counts: dict[str, int]
    notes: list[str]
    as_of: date | None
    size_bytes: int
    created_at: datetime
    updated_at: datetime


def platform_of(request: Request) -> Platform:
    return cast(Platform, request.app.state.platform)


async def _spool(request: Request, limit: int) -> tuple[IO[bytes], int]:
    spool = tempfile.SpooledTemporaryFile(max_size=SPOOL_IN_MEMORY)  # noqa: SIM115 - closed by the caller
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            spool.close()
            raise ApiError(413, "payload_too_large", f"upload exceeds {limit} bytes")
        spool.write(chunk)
    spool.seek(0)
    return spool, size


async def _source(request: Request, limit: int) -> tuple[IO[bytes], int, str | None, str | None]:
    content_type = request.headers.get("content-type", "")
    if content_type.startswith("multipart/form-data"):
        form = await request.form(max_files=1, max_fields=5, max_part_size=limit)
        upload = form.get("file")
        if not isinstance(upload, UploadFile):
            raise ApiError(422, "validation_error", "file: a multipart field named 'file' is required")
        upload.file.seek(0, 2)
        size = upload.file.tell()
        upload.file.seek(0)
        if size > limit:
            raise ApiError(413, "payload_too_large", f"upload exceeds {limit} bytes")
        return upload.file, size, upload.filename, upload.content_type
    spool, size = await _spool(request, limit)
    return spool, size, None, content_type or None


@router.post(
    "",
    status_code=202,
    response_model=UploadAccepted,
    summary="Upload Plaid-style accounts, transactions and liabilities",
    description="Multipart field `file`, or the data as the request body (application/json, "
    "application/x-ndjson, text/csv, application/zip). Every problem is reported with its path; "
    "nothing from a rejected upload is stored.",
)
async def post_upload(request: Request, principal: Principal = Depends(current_principal)) -> UploadAccepted:
    platform = platform_of(request)
    settings = cast(ProfileSettings, platform.settings)
    source, size, filename, content_type = await _source(request, settings.upload_max_bytes)
    if size == 0:
        raise ApiError(422, "invalid_upload", "body: the upload is empty")
    try:
        result = await ingest(
            platform,
            principal,
            source,
            filename=filename,
            content_type=content_type,
            size_bytes=size,
            fx_rates=settings.fx_rates,
        )
    except UploadRejected as exc:
        raise ApiError(exc.status, exc.code, str(exc), exc.details) from exc
    finally:
        source.close()
    return UploadAccepted(
        upload_id=result.upload_id,
        status=result.status,
        user_ids=result.user_ids,
        counts=result.counts,
        notes=result.notes,
    )


@router.get("/{upload_id}", response_model=UploadOut, summary="An upload's progress through the pipeline")
async def get_upload(
    upload_id: str, request: Request, principal: Principal = Depends(current_principal)
) -> UploadOut:
    database = platform_of(request).database
    async with database.engine.connect() as conn:
        row = (await conn.execute(select(uploads).where(uploads.c.upload_id == upload_id))).first()
        if row is None:
            raise ApiError(404, "not_found", f"upload {upload_id} not found")
        involved = principal.user_id == row.uploader_id or principal.user_id in row.user_ids
        if not involved and not principal.has_role(Role.operator):
            raise ApiError(404, "not_found", f"upload {upload_id} not found")  # don't reveal that it exists
        users = (
            await conn.execute(
                select(upload_users)
                .where(upload_users.c.upload_id == upload_id)
                .order_by(upload_users.c.user_id)
            )
        ).all()
    sees_all = principal.user_id == row.uploader_id or principal.has_role(Role.operator)
    if not sees_all:  # a user in someone else's batch import sees only their own progress
        users = [u for u in users if u.user_id == principal.user_id]
    return UploadOut(
        upload_id=row.upload_id,
        status=row.status,
        error=row.error if sees_all else None,
        users=[UserProgress(user_id=u.user_id, stage=u.stage, reason=u.reason) for u in users],
        counts=row.counts,
        notes=row.notes,
        as_of=row.as_of,
        size_bytes=row.size_bytes,
        created_at=row.created_at,
        updated_at=row.updated_at,
    )
