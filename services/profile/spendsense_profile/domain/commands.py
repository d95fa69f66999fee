"""Every use case the API calls, as a message for the bus: commands change state, queries read it.
The type parameter is what the handler returns."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Protocol

from spendsense_profile.domain.consent import Consent, ErasureRequested
from spendsense_profile.domain.profile import MobileProfileView, ProfileView, PushPlatform
from spendsense_profile.domain.uploads import Upload
from spendsense_shared.messagebus import Command, Query


@dataclass(frozen=True)
class GrantConsent(Command[Consent]):
    """Grant consent (superseding a current one); ensures the user's profile."""

    user_id: str
    policy_version: str | None = None
    scopes: list[str] | None = None


@dataclass(frozen=True)
class RevokeConsent(Command[Consent]):
    user_id: str


@dataclass(frozen=True)
class EraseUser(Command[ErasureRequested]):
    """The right to be forgotten: revoke a current consent, delete everything the profile holds of the
    user (rows and data-bucket objects) and ask every other service to do the same."""

    user_id: str


@dataclass(frozen=True)
class GetConsentHistory(Query[list[Consent]]):
    """Every grant and revocation, newest first."""

    user_id: str


@dataclass(frozen=True)
class HasCurrentConsent(Query[bool]):
    user_id: str


class UploadBody(Protocol):
    """An upload's bytes as they arrive (the file of a multipart form, or the request body). ``filename``
    and ``content_type`` are known once the first chunk has been read (a form part's headers come first)."""

    filename: str | None
    content_type: str | None

    def chunks(self) -> AsyncIterator[bytes]: ...


@dataclass(frozen=True)
class ReceiveUpload(Command[Upload]):
    """Store an upload's bytes as they stream in and record it ``received`` for the worker (a claim
    check); refuse it at once when that needs no parsing (consent of a user uploading their own data,
    the size limit, a blank body)."""

    actor_id: str
    actor_is_operator: bool
    body: UploadBody = field(compare=False)


@dataclass(frozen=True)
class ProcessUpload(Command[Upload | None]):
    """The worker's job: parse a received upload within its budgets, then ingest it (merge, snapshot,
    ``upload.ingested``: all or nothing) or fail it with the reason; delete the received bytes either way.
    Idempotent: an upload that is no longer ``received`` is only tidied up. None: it no longer exists."""

    upload_id: str


@dataclass(frozen=True)
class GetUpload(Query[Upload | None]):
    """An upload's progress as the actor may see it; None when it does not exist for them."""

    upload_id: str
    actor_id: str
    actor_is_operator: bool


@dataclass(frozen=True)
class GetProfile(Query[ProfileView | None]):
    user_id: str


@dataclass(frozen=True)
class GetMobileProfile(Query[MobileProfileView | None]):
    user_id: str


@dataclass(frozen=True)
class RegisterPushDevice(Command[None]):
    """Register (or move to this user) a device token; ensures the user's profile."""

    user_id: str
    token: str
    platform: PushPlatform
