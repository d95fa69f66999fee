"""``/api/v1/uploads``: Plaid-style data as a multipart file or a body (JSON, JSON Lines, CSV, zip, or
any of them gzip-compressed), received at once and parsed by the worker."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request, Response
from pydantic import BaseModel

from spendsense_profile.api.upload_body import MultipartFile, RequestBody
from spendsense_profile.domain.commands import GetUpload, ReceiveUpload, UploadBody
from spendsense_profile.domain.uploads import UploadConsentRequired, UploadRejected
from spendsense_shared.http.cached import ReadCacheDep, cached_json
from spendsense_shared.http.deps import Bus, wired, wired_value
from spendsense_shared.http.errors import ApiError
from spendsense_shared.http.responses import model_response
from spendsense_shared.security import Principal, Role, current_principal

router = APIRouter(prefix="/api/v1/uploads", tags=["uploads"])

# What a body may be declared as (the format itself is told from the content by the worker's parser).
BODY_TYPES = {
    "application/json",
    "text/json",
    "application/x-ndjson",
    "application/ndjson",
    "application/jsonl",
    "application/x-jsonlines",
    "application/jsonlines",
    "application/json-lines",
    "text/csv",
    "application/csv",
    "text/comma-separated-values",
    "application/zip",
    "application/x-zip-compressed",
    "application/x-zip",
    "application/gzip",
    "application/x-gzip",
    "application/octet-stream",
    "text/plain",
}
ENCODINGS = {"", "identity", "gzip", "x-gzip"}  # a gzip-encoded body is stored as sent, inflated when parsed


class UploadAccepted(BaseModel):
    upload_id: str
    status: str  # "received": follow it at GET /api/v1/uploads/{upload_id}
    size_bytes: int
    # Known once the worker has ingested it (GET /api/v1/uploads/{upload_id}); empty here.
    user_ids: list[str]
    counts: dict[str, int]
    notes: list[str]


class UserProgress(BaseModel):
    user_id: str
    stage: str
    reason: str | None


class UploadOut(BaseModel):
    """An upload as the reader may see it. A user in an operator's batch import sees only their own
    progress (``status`` is their own stage; no other user, counts, notes, error or size: 0); an
    operator sees only users whose consent is current, and a user's own upload only while it is."""

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


@wired
async def upload_max_bytes(request: Request) -> int:
    """The size limit of one upload (``bootstrap`` provides it from the settings)."""
    return int(wired_value(request, upload_max_bytes))


UploadLimit = Annotated[int, Depends(upload_max_bytes)]


def _body(request: Request, limit: int) -> UploadBody:
    """The upload in the request, checked as far as that needs no reading of it."""
    declared = request.headers.get("content-length", "")
    if declared == "0":
        reason = "the upload is empty"
        raise ApiError(422, "invalid_upload", f"body: {reason}", [{"field": "body", "reason": reason}])
    content_type = request.headers.get("content-type", "")
    media_type = content_type.split(";", 1)[0].strip().lower()
    if media_type == "multipart/form-data":
        boundary = next(
            (
                p.split("=", 1)[1].strip().strip('"')
                for p in content_type.split(";")[1:]
                if p.strip().lower().startswith("boundary=")
            ),
            "",
        )
        if not boundary:
            raise ApiError(400, "malformed_multipart", "the multipart body declares no boundary")
        return MultipartFile(request, boundary.encode("latin-1"))
    if media_type and media_type not in BODY_TYPES:
        raise ApiError(
            415,
            "unsupported_media_type",
            f"content type {media_type!r} is not an upload format; send JSON, JSON Lines, CSV or zip "
            "(gzip-compressed or not), or a multipart form with a field 'file'",
        )
    encoding = request.headers.get("content-encoding", "").strip().lower()
    if encoding not in ENCODINGS:
        raise ApiError(415, "unsupported_media_type", f"content encoding {encoding!r}: only gzip is accepted")
    if declared.isdigit() and int(declared) > limit:
        raise ApiError(413, "payload_too_large", f"upload exceeds {limit} bytes")
    return RequestBody(request, content_type or None)


@router.post(
    "",
    status_code=202,
    response_model=UploadAccepted,
    summary="Upload Plaid-style accounts, transactions and liabilities",
    description="Multipart field `file`, or the data as the request body (application/json, "
    "application/x-ndjson, text/csv, application/zip; any of them gzip-compressed). The upload is "
    "stored and answered at once with status `received`; the worker parses it and moves it to "
    "`ingested`, or to `failed` with every problem and its path — follow it at "
    "`GET /api/v1/uploads/{upload_id}`. Nothing of a failed upload is stored but its status.",
)
async def post_upload(
    request: Request,
    response: Response,
    bus: Bus,
    limit: UploadLimit,
    principal: Principal = Depends(current_principal),
) -> UploadAccepted:
    body = _body(request, limit)
    try:
        upload = await bus.handle(
            ReceiveUpload(
                actor_id=principal.user_id, actor_is_operator=principal.has_role(Role.operator), body=body
            )
        )
    except UploadRejected as exc:
        raise ApiError(exc.status, exc.code, str(exc), exc.details) from exc
    response.headers["Location"] = f"{router.prefix}/{upload.upload_id}"
    return UploadAccepted(
        upload_id=upload.upload_id,
        status=upload.status,
        size_bytes=upload.size_bytes,
        user_ids=upload.user_ids,
        counts=upload.counts,
        notes=upload.notes,
    )


@router.get("/{upload_id}", response_model=UploadOut, summary="An upload's progress through the pipeline")
async def get_upload(
    upload_id: str,
    request: Request,
    bus: Bus,
    cache: ReadCacheDep,
    principal: Principal = Depends(current_principal),
) -> Response:
    async def build() -> UploadOut:
        try:
            upload = await bus.handle(
                GetUpload(upload_id, principal.user_id, actor_is_operator=principal.has_role(Role.operator))
            )
        except UploadConsentRequired as exc:
            raise ApiError(403, "consent_required", "the user has not given current consent") from exc
        if upload is None:  # also when it exists but is not theirs: don't reveal that it exists
            raise ApiError(404, "not_found", f"upload {upload_id} not found")
        # read off the aggregate in one validation (its thousands of users too), not a model per user
        return UploadOut.model_validate(upload, from_attributes=True)

    if principal.has_role(Role.operator):  # sees several users' progress and consent: read afresh
        return model_response(await build())

    # Remembered only when the user is all the upload shows: then every change to it notifies them (an
    # upload not parsed yet names nobody, and its failure would notify nobody).
    def only_theirs(upload: UploadOut) -> bool:
        return bool(upload.users) and all(u.user_id == principal.user_id for u in upload.users)

    return await cached_json(request, cache, principal, principal.user_id, build, keep=only_theirs)
