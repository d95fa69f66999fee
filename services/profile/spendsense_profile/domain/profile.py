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
    """A device registered for push notifications. A token stays with the user who registered it: another
    user may take it over only once it is found unreachable (``disabled_at``), so nobody can redirect
    someone else's notifications by replaying their device token (no proof of possession otherwise).

    ``endpoint_arn`` is its Amazon SNS platform endpoint, created at its first push; ``disabled_at`` is
    when a push found the endpoint disabled or deleted (the app uninstalled, the token expired): no push
    goes to it until the device registers again."""

    token: str
    user_id: str
    platform: PushPlatform
    endpoint_arn: str | None = None
    disabled_at: datetime | None = None

    @property
    def reachable(self) -> bool:
        return self.disabled_at is None

    def may_move_to(self, user_id: str) -> bool:
        """Whether ``user_id`` may register this device's token: theirs already, or found unreachable."""
        return self.user_id == user_id or not self.reachable


class DeviceTokenInUse(Exception):
    """The device token is registered to another user and still reachable."""


@dataclass(frozen=True)
class PushNotification:
    """What a device shows. A lock screen is public: never a name, an account, a merchant or an amount,
    only how many new items wait and what kind of screen the app should open."""

    title: str
    body: str
    kind: str
    count: int


def recommendations_to_review(count: int) -> PushNotification:
    """The push announcing ``count`` reviewed recommendations the user can now read."""
    if count < 1:
        raise ValueError("count: at least one recommendation")
    noun = "recommendation" if count == 1 else "recommendations"
    return PushNotification(
        title="SpendSense",
        body=f"You have {count} new {noun} to review in SpendSense",
        kind="recommendations_published",
        count=count,
    )
