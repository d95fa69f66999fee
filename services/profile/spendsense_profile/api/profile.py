"""``/api/v1/profile/{user_id}`` and the compact mobile endpoints of the profile service."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from fastapi import APIRouter, Depends, Request, Response
from pydantic import BaseModel, ConfigDict, Field

from spendsense_profile.api.consent import ConsentOut, ConsentRequest, post_consent
from spendsense_profile.domain.commands import GetMobileProfile, GetProfile, RegisterPushDevice
from spendsense_profile.domain.profile import DeviceTokenInUse, ProfileView
from spendsense_shared.http.cached import ReadCacheDep, cached_json
from spendsense_shared.http.deps import Bus
from spendsense_shared.http.errors import ApiError
from spendsense_shared.http.paths import UserIdPath
from spendsense_shared.security import Principal, current_principal, require_user_access
from spendsense_shared.text import StoredText

router = APIRouter(tags=["profile"])


class LatestUpload(BaseModel):
    upload_id: str
    status: str
    created_at: datetime


class ProfileOut(BaseModel):
    user_id: str
    created_at: datetime
    consent: ConsentOut | None
    uploads: int
    latest_upload: LatestUpload | None

    @classmethod
    def of(cls, view: ProfileView) -> ProfileOut:
        latest = view.latest_upload
        return cls(
            user_id=view.profile.user_id,
            created_at=view.profile.created_at,
            consent=ConsentOut.of(view.consent) if view.consent else None,
            uploads=view.uploads,
            latest_upload=LatestUpload(
                upload_id=latest.upload_id, status=latest.status, created_at=latest.created_at
            )
            if latest
            else None,
        )


class MobileProfile(BaseModel):
    user_id: str
    consent: Literal["granted", "none"]
    latest_upload_status: str | None


class PushRegistration(BaseModel):
    model_config = ConfigDict(extra="forbid")

    token: str = Field(min_length=16, max_length=512, pattern=r"^[A-Za-z0-9:_\-.]+$")
    platform: Literal["ios", "android"]


def _no_profile(user_id: str) -> ApiError:
    return ApiError(
        404,
        "not_found",
        f"no profile for {user_id}: a profile is created when the user registers or first consents",
    )


@router.get("/api/v1/profile/{user_id}", response_model=ProfileOut, summary="The user's profile and consent")
async def get_profile(
    user_id: str,
    request: Request,
    bus: Bus,
    cache: ReadCacheDep,
    principal: Principal = Depends(require_user_access),
) -> Response:
    async def build() -> ProfileOut:
        view = await bus.handle(GetProfile(user_id))
        if view is None:
            raise _no_profile(user_id)
        return ProfileOut.of(view)

    return await cached_json(request, cache, principal, user_id, build)


@router.get(
    "/api/v1/mobile/profile/{user_id}", response_model=MobileProfile, summary="Compact profile, for iOS"
)
async def get_mobile_profile(
    user_id: UserIdPath,
    request: Request,
    bus: Bus,
    cache: ReadCacheDep,
    principal: Principal = Depends(require_user_access),
) -> Any:
    async def build() -> MobileProfile:
        view = await bus.handle(GetMobileProfile(user_id))
        if view is None:
            raise _no_profile(user_id)
        return MobileProfile(
            user_id=view.user_id, consent=view.consent, latest_upload_status=view.latest_upload_status
        )

    return await cached_json(request, cache, principal, user_id, build, "private, max-age=30")


class MobileConsent(BaseModel):
    model_config = ConfigDict(extra="forbid")

    policy_version: StoredText | None = Field(None, min_length=1, max_length=32)
    scopes: list[StoredText] | None = Field(None, max_length=10)


@router.post(
    "/api/v1/mobile/consent/{user_id}",
    status_code=201,
    response_model=ConsentOut,
    summary="Grant consent (mobile)",
)
async def post_mobile_consent(
    user_id: UserIdPath,
    body: MobileConsent,
    bus: Bus,
    principal: Principal = Depends(current_principal),
) -> ConsentOut:
    request = ConsentRequest(user_id=user_id, policy_version=body.policy_version, scopes=body.scopes)
    return await post_consent(request, bus, principal)


@router.post(
    "/api/v1/mobile/push/register", status_code=201, summary="Register a device for push notifications"
)
async def register_push(
    body: PushRegistration, bus: Bus, principal: Principal = Depends(current_principal)
) -> dict[str, str]:
    try:
        await bus.handle(RegisterPushDevice(principal.user_id, body.token, body.platform))
    except DeviceTokenInUse as exc:
        raise ApiError(
            409,
            "device_token_in_use",
            "token: this device token is registered to another account",
            [{"field": "token", "reason": "registered to another account"}],
        ) from exc
    return {"status": "registered"}
