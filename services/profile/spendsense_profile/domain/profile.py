"""A user's profile and the views of it the API serves. Free of I/O."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from spendsense_profile.domain.consent import Consent
from spendsense_profile.domain.uploads import UploadSummary

PushPlatform = Literal["ios", "android"]


@dataclass(frozen=True)
class Profile:
    user_id: str
    created_at: datetime


@dataclass(frozen=True)
class ProfileView:
    profile: Profile
    consent: Consent | None  # the current one
    uploads: int
    latest_upload: UploadSummary | None


@dataclass(frozen=True)
class MobileProfileView:
    user_id: str
    consent: Literal["granted", "none"]
    latest_upload_status: str | None

    @classmethod
    def of(cls, view: ProfileView) -> MobileProfileView:
        return cls(
            user_id=view.profile.user_id,
            consent="granted" if view.consent else "none",
            latest_upload_status=view.latest_upload.status if view.latest_upload else None,
        )


@dataclass(frozen=True)
class PushDevice:
    """A device registered for push notifications; a token moves with its device to its latest user."""

    token: str
    user_id: str
    platform: PushPlatform
