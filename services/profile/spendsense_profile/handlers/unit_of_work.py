"""The ports the profile's handlers work through: one abstract repository per aggregate, and the unit
of work that holds them (SQL implementations in ``adapters``, in-memory ones in the unit tests)."""

from __future__ import annotations

import abc
from collections.abc import AsyncIterator
from datetime import datetime
from typing import Protocol

import pyarrow as pa

from spendsense_profile.domain.consent import Consent
from spendsense_profile.domain.profile import Profile, PushDevice
from spendsense_profile.domain.uploads import (
    ErasedUploads,
    ParseBudget,
    ParseOutcome,
    Upload,
    UploadSource,
    UploadSummary,
    UserProgress,
)
from spendsense_shared.unit_of_work import AbstractUnitOfWork


class ConsentRepository(abc.ABC):
    """Profiles and the consent records of their users."""

    @abc.abstractmethod
    async def ensure_profile(self, user_id: str) -> None:
        """Create the user's profile unless it exists, and lock it until the transaction ends: changes to
        one user's consent apply one after the other (two grants at once would both find no current
        consent and both insert one)."""

    @abc.abstractmethod
    async def get_profile(self, user_id: str) -> Profile | None: ...

    @abc.abstractmethod
    async def current(self, user_id: str, *, for_update: bool = False) -> Consent | None:
        """The user's current consent (``for_update``: locked until the transaction ends)."""

    @abc.abstractmethod
    async def history(self, user_id: str) -> list[Consent]:
        """Every consent of the user, newest first."""

    async def without_current_consent(self, user_ids: list[str]) -> set[str]:
        """Those of ``user_ids`` without a current consent (the store may answer in one query)."""
        return {u for u in user_ids if await self.current(u) is None}

    @abc.abstractmethod
    async def add(self, consent: Consent) -> None: ...

    @abc.abstractmethod
    async def mark_revoked(self, consent: Consent) -> None: ...

    @abc.abstractmethod
    async def reassign(self, source_user_id: str, target_user_id: str) -> None:
        """Every consent record of the source becomes the target's (revoke one first if both have a
        current consent: the database refuses two)."""

    @abc.abstractmethod
    async def delete_profile(self, user_id: str) -> None: ...

    @abc.abstractmethod
    async def erase_user(self, user_id: str) -> None:
        """Delete every consent record (current or not) and the profile of the user (an erasure), and keep
        a tombstone under the user's pseudonym."""

    @abc.abstractmethod
    async def is_erased(self, user_id: str) -> bool:
        """The user was erased (their tombstone is here)."""


class UploadRepository(abc.ABC):
    """Uploads and each of their users' progress."""

    @abc.abstractmethod
    async def add(self, upload: Upload) -> None:
        """Store a new upload; a received one wakes the worker once the transaction commits."""

    @abc.abstractmethod
    async def save(self, upload: Upload) -> None:
        """Store what the worker decided: the upload's status, error, users and what was ingested."""

    @abc.abstractmethod
    async def count_attempt(self, upload_id: str) -> int:
        """One more attempt at parsing the upload; how many there have been."""

    @abc.abstractmethod
    async def source_deleted(self, upload_id: str) -> None:
        """The received bytes are gone from the bucket: nothing is left for the worker to do."""

    @abc.abstractmethod
    async def get(self, upload_id: str, *, for_update: bool = False) -> Upload | None:
        """The upload with its users (ordered by user id) and its status as they make it
        (:func:`~spendsense_profile.domain.uploads.with_users_status`); ``for_update`` locks it."""

    @abc.abstractmethod
    async def stages_of(self, upload_id: str, user_ids: list[str]) -> dict[str, UserProgress]:
        """The progress in the upload of those of ``user_ids`` it has (by user id), locking their rows only
        until the transaction ends: progress events of other users of one batch never wait on these
        (the upload's status is derived from its users when it is read, not stored per event)."""

    @abc.abstractmethod
    async def save_stages(self, upload_id: str, progress: list[UserProgress]) -> None:
        """Store the users' stages."""

    @abc.abstractmethod
    async def stuck(self, stage: str, older_than_s: float, limit: int) -> dict[str, list[str]]:
        """The users (at most ``limit``) whose stage in an upload is ``stage`` and has not changed for
        ``older_than_s`` seconds, by upload: work that should have moved on (the reconciler's)."""

    @abc.abstractmethod
    async def touch_stage(self, upload_id: str, user_ids: list[str]) -> None:
        """Start the users' wait again (stage unchanged): their work was published again just now."""

    @abc.abstractmethod
    async def count_for_user(self, user_id: str) -> int:
        """How many uploads hold the user's data."""

    @abc.abstractmethod
    async def latest_for_user(self, user_id: str) -> UploadSummary | None: ...

    @abc.abstractmethod
    async def merge_user(self, source_user_id: str, target_user_id: str) -> None:
        """The source account was merged into the target: the source's membership of every upload (its
        progress row, its place in ``user_ids``, the uploader) becomes the target's. In an upload of both,
        the target's progress is kept and the upload's status recomputed without the source's."""

    @abc.abstractmethod
    async def erase_user(self, user_id: str) -> ErasedUploads:
        """The user is erased: an upload of only theirs is deleted (one they uploaded that is still
        waiting to be parsed too); from an upload shared with others (a batch import) their progress,
        their place in ``user_ids``, their snapshot keys and the notes naming them are removed and the
        upload's status recomputed; where they were the uploader, the uploader becomes
        :func:`spendsense_shared.erasure.pseudonym` of their id. Returns what is left to do in the data
        bucket: the deleted uploads' objects, and the shared uploads' snapshots holding the user's rows."""


class NormalizedData(abc.ABC):
    """The users' normalized accounts, transactions and liabilities (``spendsense_shared.dataset.TABLES``)."""

    @abc.abstractmethod
    async def merge(self, tables: dict[str, pa.Table], upload_id: str) -> dict[str, int]:
        """Insert or update (by key) every row; the number of rows merged per table."""

    @abc.abstractmethod
    async def holds_rows(self, user_ids: list[str]) -> bool:
        """Whether anything is stored for any of these users."""

    @abc.abstractmethod
    async def remove_transactions(self, pairs: list[tuple[str, str]]) -> int:
        """Delete these (user_id, transaction_id); how many existed."""

    @abc.abstractmethod
    async def snapshot(self, user_ids: list[str]) -> dict[str, pa.Table]:
        """Everything stored for these users, one table per name of the normalized schema."""

    @abc.abstractmethod
    async def merge_user(self, source_user_id: str, target_user_id: str) -> None:
        """Every row of the source becomes the target's, except where the target has a row with the same
        key (e.g. the same transaction id): the target's is kept and the source's deleted."""

    @abc.abstractmethod
    async def erase_user(self, user_id: str) -> None:
        """Delete every account, transaction and liability of the user."""


class PushDeviceRepository(abc.ABC):
    @abc.abstractmethod
    async def holder(self, token: str) -> PushDevice | None:
        """The device registered under ``token``, locked until the transaction ends; None if none is."""

    @abc.abstractmethod
    async def register(self, device: PushDevice) -> None:
        """Store the device, re-assigning its token when another user had it (the handler allows that
        only for an unreachable device; the store never moves a reachable one). Registering again makes
        a disabled device reachable: it loses its endpoint (and so does one whose platform changed), so
        its next push creates, and re-enables, the endpoint of its token."""

    @abc.abstractmethod
    async def for_user(self, user_id: str) -> list[PushDevice]:
        """Every device of the user (disabled ones too), by token."""

    @abc.abstractmethod
    async def set_endpoint(self, token: str, endpoint_arn: str) -> None:
        """The device's SNS platform endpoint, once created."""

    @abc.abstractmethod
    async def disable(self, token: str, at: datetime) -> None:
        """Its endpoint is disabled or gone: no push until the device registers again."""

    @abc.abstractmethod
    async def reassign(self, source_user_id: str, target_user_id: str) -> None:
        """Every device of the source becomes the target's."""

    @abc.abstractmethod
    async def erase_user(self, user_id: str) -> None:
        """Delete every device of the user."""


class UploadSources(Protocol):
    """Received uploads' bytes in the data bucket, under the profile's prefix."""

    async def put(self, name: str, chunks: AsyncIterator[bytes], content_type: str | None) -> int:
        """Store the chunks as they come as one object; its size. When the chunks raise, nothing is kept
        and the exception propagates."""
        ...

    async def delete(self, name: str) -> None:
        """Delete the object (already gone is fine)."""
        ...


class UploadParser(Protocol):
    """Parses a received upload away from the caller (another process), within a budget."""

    async def parse(self, source: UploadSource, budget: ParseBudget, *, default_user_id: str) -> ParseOutcome:
        """The parsed upload, or why it could not be parsed. Raises :class:`ParseInterrupted` when the
        parse was stopped from outside (the worker is shutting down): the upload is left to a later
        attempt."""
        ...


class ParseInterrupted(Exception):
    """The parsing process was stopped from outside (not by a budget): try again later."""


class ProfileUnitOfWork(AbstractUnitOfWork):
    consents: ConsentRepository
    uploads: UploadRepository
    data: NormalizedData
    push_devices: PushDeviceRepository
