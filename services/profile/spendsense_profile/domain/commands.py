"""Every use case the API calls, as a message for the bus: commands change state, queries read it.
The type parameter is what the handler returns."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import IO

from spendsense_profile.domain.consent import Consent, ErasureRequested
from spendsense_profile.domain.profile import MobileProfileView, ProfileView, PushPlatform
from spendsense_profile.domain.uploads import IngestResult, Upload
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


@dataclass(frozen=True)
class IngestUpload(Command[IngestResult]):
    """Validate an upload, merge it into the user's data, snapshot it and announce it: all or nothing."""

    actor_id: str
    actor_is_operator: bool
    source: IO[bytes] = field(compare=False)
    size_bytes: int
    filename: str | None = None
    content_type: str | None = None


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
