"""Uploads: what was ingested, and each user's progress through the pipeline (the upload is as far as
its slowest user). Free of I/O."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import date, datetime
from typing import Any

from spendsense_shared.erasure import pseudonym
from spendsense_shared.messaging.catalog import UploadIngested

STAGES = ("received", "ingested", "analyzed", "recommended")
FAILED = "failed"


def advances(current: str, new: str) -> bool:
    """Stages only move forward (events may arrive out of order); a failure is final."""
    if current == FAILED:
        return False
    return new == FAILED or STAGES.index(new) > STAGES.index(current)


def upload_status(users: list[tuple[str, str, str | None]]) -> tuple[str, dict[str, Any] | None]:
    """(user_id, stage, reason) per user → the upload's status and, when users failed, the error."""
    failed = [{"user_id": u, "reason": r} for u, s, r in users if s == FAILED]
    active = [s for _, s, _ in users if s != FAILED]
    status = min(active, key=STAGES.index) if active else FAILED
    error = {"code": "user_failed", "failed_users": failed} if failed else None
    return status, error


class UploadRejected(Exception):
    """The upload is refused as a whole; nothing of it is stored."""

    def __init__(self, status: int, code: str, message: str, details: Any = None):
        super().__init__(message)
        self.status, self.code, self.details = status, code, details


def erased_from(upload: Upload, user_id: str) -> Upload:
    """A shared upload once ``user_id`` is erased from it: their progress, their place in ``user_ids``,
    their snapshot keys and the notes naming them are gone, the status is recomputed from the others';
    an uploader who is erased becomes a one-way hash of their id."""
    users = [u for u in upload.users if u.user_id != user_id]
    status, error = upload_status([(u.user_id, u.stage, u.reason) for u in users])
    return replace(
        upload,
        uploader_id=pseudonym(user_id) if upload.uploader_id == user_id else upload.uploader_id,
        user_ids=[u for u in upload.user_ids if u != user_id],
        keys=[k for k in upload.keys if f"/users/{user_id}/" not in f"/{k}"],
        notes=[n for n in upload.notes if user_id not in n],
        users=users,
        status=status,
        error=error,
    )


@dataclass
class UserProgress:
    user_id: str
    stage: str
    reason: str | None = None


@dataclass
class Upload:
    """The aggregate: an ingested upload and its users' progress."""

    upload_id: str
    uploader_id: str
    status: str
    size_bytes: int
    user_ids: list[str]
    counts: dict[str, int]
    notes: list[str]
    keys: list[str]
    format: str | None = None
    as_of: date | None = None
    error: dict[str, Any] | None = None
    users: list[UserProgress] = field(default_factory=list)
    created_at: datetime | None = None  # set by the store
    updated_at: datetime | None = None

    @classmethod
    def ingested(
        cls,
        upload_id: str,
        uploader_id: str,
        *,
        size_bytes: int,
        user_ids: list[str],
        counts: dict[str, int],
        notes: list[str],
        keys: list[str],
        format: str | None,
        as_of: date | None,
    ) -> Upload:
        return cls(
            upload_id=upload_id,
            uploader_id=uploader_id,
            status="ingested",
            size_bytes=size_bytes,
            user_ids=list(user_ids),
            counts=dict(counts),
            notes=list(notes),
            keys=list(keys),
            format=format,
            as_of=as_of,
            users=[UserProgress(u, "ingested") for u in user_ids],
        )

    def progress_of(self, user_id: str) -> UserProgress | None:
        return next((u for u in self.users if u.user_id == user_id), None)

    def advance(self, user_id: str, stage: str, reason: str | None = None) -> bool:
        """Move the user to ``stage`` if that is forward; recompute the upload's status. False: no change."""
        progress = self.progress_of(user_id)
        if progress is None or not advances(progress.stage, stage):
            return False
        progress.stage, progress.reason = stage, reason
        self.status, self.error = upload_status([(u.user_id, u.stage, u.reason) for u in self.users])
        return True

    def involves(self, user_id: str) -> bool:
        return user_id == self.uploader_id or user_id in self.user_ids

    def seen_by(self, user_id: str, *, operator: bool) -> Upload | None:
        """What ``user_id`` may see of this upload: None when they are not involved (not even its
        existence); a user in someone else's batch import sees only their own progress and no error."""
        if not self.involves(user_id) and not operator:
            return None
        if user_id == self.uploader_id or operator:
            return self
        users = [u for u in self.users if u.user_id == user_id]
        return replace(self, users=users, error=None)


@dataclass(frozen=True)
class UploadSummary:
    upload_id: str
    status: str
    created_at: datetime


@dataclass(frozen=True)
class IngestResult:
    upload_id: str
    status: str
    user_ids: list[str]
    counts: dict[str, int]
    notes: list[str] = field(default_factory=list)


USERS_PER_EVENT = 100  # an upload.ingested event names at most this many users: it stays far below 64 KB


def ingested_events(
    upload_id: str, user_ids: list[str], bucket: str, keys: list[str], as_of: date | None
) -> list[UploadIngested]:
    """``upload.ingested`` for an upload, one event per chunk of users with those users' snapshot keys,
    so a batch import of any size makes events of bounded size (and features analyzes chunk by chunk)."""
    keys_of: dict[str, list[str]] = {}
    for key in keys:  # profile/users/{user_id}/uploads/{upload_id}/{table}.parquet
        keys_of.setdefault(f"/{key}".split("/users/", 1)[1].split("/", 1)[0], []).append(key)
    chunks = [user_ids[i : i + USERS_PER_EVENT] for i in range(0, len(user_ids), USERS_PER_EVENT)]
    return [
        UploadIngested(
            upload_id=upload_id,
            user_ids=chunk,
            bucket=bucket,
            keys=[k for u in chunk for k in keys_of.get(u, [])],
            as_of=as_of,
        )
        for chunk in chunks
    ]
