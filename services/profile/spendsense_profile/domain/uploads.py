"""Uploads: what was received, what was ingested, and each user's progress through the pipeline (the
upload is as far as its slowest user). Free of I/O.

An upload's life: ``POST /uploads`` streams the body to the data bucket and records it ``received`` (a
claim check: nothing is parsed on the request path); the worker parses it within a :class:`ParseBudget`,
then either ingests it (``ingested``, then each user ``analyzed`` → ``recommended`` as the services
downstream report) or fails it with an :class:`UploadFailure` — in both cases the received object is
deleted, so nothing of a failed upload is kept but its row and reason.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import date, datetime
from typing import Any, Literal, TypeAlias

from spendsense_profile.domain.ingest import ParsedUpload
from spendsense_shared.erasure import pseudonym
from spendsense_shared.messaging.catalog import USERS_PER_INGESTED_EVENT, UploadIngested

RECEIVED = "received"
STAGES = (RECEIVED, "ingested", "analyzed", "recommended")
FAILED = "failed"
MAX_LISTED_PROBLEMS = 5  # in a failure's message; every problem is in its details


def advances(current: str, new: str) -> bool:
    """Stages only move forward (events may arrive out of order); a failure is final."""
    if current == FAILED:
        return False
    return new == FAILED or STAGES.index(new) > STAGES.index(current)


def upload_status(users: Sequence[UserProgress]) -> tuple[str, dict[str, Any] | None]:
    """Its users' progress → the upload's status and, when users failed, the error."""
    failed = [{"user_id": u.user_id, "reason": u.reason} for u in users if u.stage == FAILED]
    active = {u.stage for u in users} - {FAILED}
    status = min(active, key=STAGES.index) if active else FAILED
    error = {"code": "user_failed", "failed_users": failed} if failed else None
    return status, error


def with_users_status(upload: Upload) -> Upload:
    """The upload with the status its users make: once ingested, an upload is as far as its slowest user
    (derived when read, so progress events of one batch's users never contend for the upload's row)."""
    if upload.users:
        upload.status, upload.error = upload_status(upload.users)
    return upload


class UploadRejected(Exception):
    """The upload is refused as a whole at the door (HTTP ``status``); nothing of it is stored."""

    def __init__(self, status: int, code: str, message: str, details: Any = None):
        super().__init__(message)
        self.status, self.code, self.details = status, code, details


_BLANK = b" \t\r\n\x0b\x0c"
_BOM = b"\xef\xbb\xbf"


class BodyMeter:
    """Counts an upload's bytes as they stream in: over ``limit`` it refuses with 413 at once (a body
    that never ends is cut off there), and at the end it refuses a body that held nothing but blanks
    (and a byte-order mark) with 422 — the one kind of empty upload that can be told without parsing."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.size = 0
        self.blank = True
        self._start: bytes | None = b""  # the first bytes, until it is known whether they are a BOM

    def feed(self, chunk: bytes) -> None:
        self.size += len(chunk)
        if self.size > self.limit:
            raise UploadRejected(413, "payload_too_large", f"upload exceeds {self.limit} bytes")
        if not self.blank:
            return
        if self._start is not None:
            self._start += chunk
            if len(self._start) < len(_BOM) and _BOM.startswith(self._start):
                return
            chunk, self._start = self._start.removeprefix(_BOM), None
        if chunk.strip(_BLANK):
            self.blank = False

    def finish(self) -> None:
        if self.blank:
            reason = "the upload is empty"
            raise UploadRejected(
                422, "invalid_upload", f"body: {reason}", [{"field": "body", "reason": reason}]
            )


@dataclass(frozen=True)
class UploadSource:
    """A received upload's bytes, waiting in the data bucket until the worker has parsed them."""

    name: str  # under the profile's prefix of the data bucket
    filename: str | None = None
    content_type: str | None = None


def source_name(upload_id: str) -> str:
    return f"uploads/{upload_id}/source"


@dataclass(frozen=True)
class ParseBudget:
    """What parsing one upload may cost: CPU time, wall-clock time, and bytes once decompressed."""

    cpu_seconds: int
    wall_seconds: float
    decompressed_bytes: int


Budget = Literal["cpu_seconds", "wall_seconds", "decompressed_bytes"]


@dataclass(frozen=True)
class BudgetExceeded:
    """The parse was stopped: it would have cost more than ``budget`` allows (``limit``)."""

    budget: Budget
    limit: float


@dataclass(frozen=True)
class BlankUpload:
    """The upload, once decompressed, holds nothing but blanks (told before parsing)."""


@dataclass(frozen=True)
class ParserCrashed:
    """The parsing process died of something other than a budget (``detail`` says what)."""

    detail: str


ParseOutcome: TypeAlias = ParsedUpload | BudgetExceeded | BlankUpload | ParserCrashed


@dataclass(frozen=True)
class UploadFailure:
    """Why an upload ended ``failed``; stored as its ``error`` (``details`` as a 422 would have them)."""

    code: str
    message: str
    details: Any = None

    def as_error(self) -> dict[str, Any]:
        error: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.details is not None:
            error["details"] = self.details
        return error


EMPTY = UploadFailure("empty_upload", "the upload holds no accounts and no transactions")


def judge(outcome: ParseOutcome, uploader_id: str, *, uploader_is_operator: bool) -> UploadFailure | None:
    """What a parse outcome means for the upload: None when it may be ingested (consent aside)."""
    if isinstance(outcome, BudgetExceeded):
        return UploadFailure(
            "budget_exceeded",
            f"parsing stopped: the upload exceeds its {outcome.budget} budget ({outcome.limit:g})",
            {"budget": outcome.budget, "limit": outcome.limit},
        )
    if isinstance(outcome, BlankUpload):
        return EMPTY
    if isinstance(outcome, ParserCrashed):
        return UploadFailure("parser_crashed", f"parsing failed: {outcome.detail}")
    if not outcome.ok:
        details = [{"field": p.path, "reason": p.reason} for p in outcome.problems]
        message = "; ".join(f"{d['field']}: {d['reason']}" for d in details[:MAX_LISTED_PROBLEMS])
        return UploadFailure("invalid_upload", message, details)
    rows = {name: table.num_rows for name, table in outcome.tables.items()}
    if not rows.get("accounts") and not rows.get("transactions"):
        return EMPTY
    if not uploader_is_operator and sorted(outcome.user_ids) != [uploader_id]:
        return UploadFailure("forbidden", "user_id: a user may upload only their own data")
    return None


def consent_missing(user_ids: list[str]) -> UploadFailure:
    return UploadFailure(
        "consent_required", f"no current consent for {len(user_ids)} user(s)", {"user_ids": user_ids[:100]}
    )


def erased_from(upload: Upload, user_id: str) -> Upload:
    """A shared upload once ``user_id`` is erased from it: their progress, their place in ``user_ids``,
    their snapshot keys and the notes naming them are gone, the status is recomputed from the others';
    an uploader who is erased becomes a one-way hash of their id."""
    users = [u for u in upload.users if u.user_id != user_id]
    status, error = upload_status(users)
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
    """The aggregate: an upload (received, ingested or failed) and its users' progress."""

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
    uploader_is_operator: bool = False  # the uploader's role when they uploaded (a batch import)
    source: UploadSource | None = None  # the received bytes, until the worker has deleted them
    correlation_id: str | None = None  # of the request that uploaded it: carried by its events and logs
    attempts: int = 0  # times the worker started parsing it

    @classmethod
    def received(
        cls,
        upload_id: str,
        uploader_id: str,
        *,
        uploader_is_operator: bool,
        size_bytes: int,
        source: UploadSource,
        correlation_id: str | None,
    ) -> Upload:
        return cls(
            upload_id=upload_id,
            uploader_id=uploader_id,
            status=RECEIVED,
            size_bytes=size_bytes,
            user_ids=[],
            counts={},
            notes=[],
            keys=[],
            uploader_is_operator=uploader_is_operator,
            source=source,
            correlation_id=correlation_id,
        )

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
        """An upload as the worker leaves it once ingested."""
        upload = cls(upload_id, uploader_id, RECEIVED, size_bytes, [], {}, [], [])
        upload.mark_ingested(
            user_ids=user_ids, counts=counts, notes=notes, keys=keys, format=format, as_of=as_of
        )
        return upload

    @property
    def waiting(self) -> bool:
        """Received and not yet parsed to an end: the worker's to do."""
        return self.status == RECEIVED

    def mark_ingested(
        self,
        *,
        user_ids: list[str],
        counts: dict[str, int],
        notes: list[str],
        keys: list[str],
        format: str | None,
        as_of: date | None,
    ) -> None:
        if not self.waiting:
            raise ValueError(f"upload {self.upload_id} is {self.status}, not {RECEIVED}")
        self.status, self.error = "ingested", None
        self.user_ids, self.counts, self.notes, self.keys = (
            list(user_ids),
            dict(counts),
            list(notes),
            list(keys),
        )
        self.format, self.as_of = format, as_of
        self.users = [UserProgress(u, "ingested") for u in user_ids]

    def mark_failed(self, failure: UploadFailure) -> None:
        """Final: nothing of it is kept but this row and the reason."""
        if not self.waiting:
            raise ValueError(f"upload {self.upload_id} is {self.status}, not {RECEIVED}")
        self.status, self.error = FAILED, failure.as_error()
        self.user_ids, self.counts, self.notes, self.keys, self.users = [], {}, [], [], []

    def progress_of(self, user_id: str) -> UserProgress | None:
        return next((u for u in self.users if u.user_id == user_id), None)

    def advance(self, user_id: str, stage: str, reason: str | None = None) -> bool:
        """Move the user to ``stage`` if that is forward; recompute the upload's status. False: no change."""
        progress = self.progress_of(user_id)
        if progress is None or not advances(progress.stage, stage):
            return False
        progress.stage, progress.reason = stage, reason
        self.status, self.error = upload_status(self.users)
        return True

    def involves(self, user_id: str) -> bool:
        return user_id == self.uploader_id or user_id in self.user_ids

    def seen_by(self, user_id: str, *, operator: bool) -> Upload | None:
        """What ``user_id`` may see of this upload: None when they are not involved (not even its
        existence); a user in someone else's batch import sees only their own progress: their own
        stage as the status, and nothing batch-wide (no other user, counts, notes, error or size)."""
        if not self.involves(user_id) and not operator:
            return None
        if user_id == self.uploader_id or operator:
            return self
        users = [u for u in self.users if u.user_id == user_id]
        status = upload_status(users)[0] if users else self.status
        return replace(
            self,
            status=status,
            users=users,
            user_ids=[user_id],
            counts={},
            notes=[],
            error=None,
            size_bytes=0,
        )

    def without_users(self, hidden: set[str]) -> Upload:
        """This upload with ``hidden`` users' progress left out (operators: users whose consent is not
        current), in its users, ids and error alike."""
        if not hidden:
            return self
        error = self.error
        if error is not None and isinstance(error.get("failed_users"), list):
            kept = [f for f in error["failed_users"] if f.get("user_id") not in hidden]
            error = {**error, "failed_users": kept}
        return replace(
            self,
            users=[u for u in self.users if u.user_id not in hidden],
            user_ids=[u for u in self.user_ids if u not in hidden],
            error=error,
        )


class UploadConsentRequired(Exception):
    """An operator asked for a user's own upload while that user's consent is not current."""


@dataclass(frozen=True)
class UploadSummary:
    upload_id: str
    status: str
    created_at: datetime


USERS_PER_EVENT = USERS_PER_INGESTED_EVENT


def user_chunks(user_ids: list[str]) -> list[list[str]]:
    """The upload's users in chunks of at most :data:`USERS_PER_EVENT`: one ``upload.ingested`` event and
    one snapshot object per table for each (features analyzes chunk by chunk)."""
    return [user_ids[i : i + USERS_PER_EVENT] for i in range(0, len(user_ids), USERS_PER_EVENT)]


def chunk_names(count: int, attempt: str | None = None) -> list[str]:
    """Names of the chunks' snapshots in their keys: ``0000``, ``0001``… for the ingest; a snapshot
    written again for stuck users (``attempt``) gets names of its own, so that it never overwrites a
    chunk other users' analyses still point at."""
    return [f"{attempt}-{i:04d}" if attempt else f"{i:04d}" for i in range(count)]


def ingested_events(
    upload_id: str,
    chunks: list[list[str]],
    bucket: str,
    keys: list[list[str]],
    as_of: date | None,
    kind: type[UploadIngested] = UploadIngested,
) -> list[UploadIngested]:
    """``upload.ingested`` for an upload, one event per chunk of users with that chunk's snapshot keys, so
    a batch import of any size makes events of bounded size (and features analyzes chunk by chunk); or
    ``upload.staged`` (``kind``), the chunks' hints while the upload is merged."""
    return [
        kind(upload_id=upload_id, user_ids=users, bucket=bucket, keys=chunk_keys, as_of=as_of)
        for users, chunk_keys in zip(chunks, keys, strict=True)
    ]


@dataclass(frozen=True)
class ErasedUploads:
    """What erasing a user from the uploads leaves to do in the data bucket: ``prefixes`` to delete (the
    objects of uploads that were only theirs: received bytes and snapshots), and the snapshot ``keys`` of
    uploads shared with others, to rewrite without the user's rows."""

    prefixes: list[str] = field(default_factory=list)
    shared_keys: list[str] = field(default_factory=list)


def upload_objects(upload_id: str) -> str:
    """Everything of an upload in the data bucket (under the profile's prefix): received bytes, snapshots."""
    return f"uploads/{upload_id}/"
