"""``/api/v1/uploads``: Plaid-style data as a multipart file or a body (JSON, JSON Lines, CSV, zip)."""

from __future__ import annotations

import tempfile
from datetime import date, datetime
from typing import IO, Annotated, Any

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel
from starlette.datastructures import UploadFile

from spendsense_profile.domain.commands import GetUpload, IngestUpload
from spendsense_profile.domain.uploads import UploadRejected
from spendsense_shared.http.deps import Bus
from spendsense_shared.http.errors import ApiError
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


def upload_max_bytes() -> int:
    """The size limit of one upload (``bootstrap`` provides it from the settings)."""
    raise RuntimeError("no upload size limit is wired into this app")


UploadLimit = Annotated[int, Depends(upload_max_bytes)]


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
async def post_upload(
    request: Request, bus: Bus, limit: UploadLimit, principal: Principal = Depends(current_principal)
) -> UploadAccepted:
    source, size, filename, content_type = await _source(request, limit)
    try:
        if size == 0:
            raise ApiError(422, "invalid_upload", "body: the upload is empty")
        result = await bus.handle(
            IngestUpload(
                actor_id=principal.user_id,
                actor_is_operator=principal.has_role(Role.operator),
                source=source,
                size_bytes=size,
                filename=filename,
                content_type=content_type,
            )
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
    upload_id: str, bus: Bus, principal: Principal = Depends(current_principal)
) -> UploadOut:
    upload = await bus.handle(
        GetUpload(upload_id, principal.user_id, actor_is_operator=principal.has_role(Role.operator))
    )
    if upload is None:  # also when it exists but is not theirs: don't reveal that it exists
        raise ApiError(404, "not_found", f"upload {upload_id} not found")
    assert upload.created_at is not None  # a stored upload has both
    assert upload.updated_at is not None
    return UploadOut(
        upload_id=upload.upload_id,
        status=upload.status,
        error=upload.error,
        users=[UserProgress(user_id=u.user_id, stage=u.stage, reason=u.reason) for u in upload.users],
        counts=upload.counts,
        notes=upload.notes,
        as_of=upload.as_of,
        size_bytes=upload.size_bytes,
        created_at=upload.created_at,
        updated_at=upload.updated_at,
    )
