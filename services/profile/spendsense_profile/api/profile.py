"""``/api/v1/profile/{user_id}`` and the compact mobile endpoints of the profile service."""

from __future__ import annotations

import hashlib
import json
from datetime import datetime
from typing import Any, Literal, cast

from fastapi import APIRouter, Depends, Request, Response
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import func, select
from sqlalchemy.dialects.postgresql import insert

from spendsense_profile.adapters.orm import profiles, push_devices, uploads
from spendsense_profile.adapters.repository import ConsentRepository
from spendsense_profile.api.consent import ConsentOut, ConsentRequest, post_consent
from spendsense_shared.db import Database
from spendsense_shared.http.errors import ApiError
from spendsense_shared.security import Principal, current_principal, require_user_access

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


class MobileProfile(BaseModel):
    user_id: str
    consent: Literal["granted", "none"]
    latest_upload_status: str | None


class PushRegistration(BaseModel):
    model_config = ConfigDict(extra="forbid")

    token: str = Field(min_length=16, max_length=512, pattern=r"^[A-Za-z0-9:_\-.]+$")
    platform: Literal["ios", "android"]


def database(request: Request) -> Database:
    return cast(Database, request.app.state.platform.database)


async def load_profile(db: Database, user_id: str, principal: Principal) -> ProfileOut:
    async with db.uow() as uow:
        if principal.user_id == user_id:  # a profile exists for every user who shows up with a valid token
            await ConsentRepository(uow.session).ensure_profile(user_id)
            await uow.commit()
        row = (await uow.session.execute(select(profiles).where(profiles.c.user_id == user_id))).first()
        if row is None:
            raise ApiError(404, "not_found", f"no profile for {user_id}")
        consent = await ConsentRepository(uow.session).current(user_id)
        count = (
            await uow.session.execute(
                select(func.count()).select_from(uploads).where(uploads.c.user_ids.contains([user_id]))
            )
        ).scalar_one()
        latest = (
            await uow.session.execute(
                select(uploads.c.upload_id, uploads.c.status, uploads.c.created_at)
                .where(uploads.c.user_ids.contains([user_id]))
                .order_by(uploads.c.created_at.desc())
                .limit(1)
            )
        ).first()
    return ProfileOut(
        user_id=user_id,
        created_at=row.created_at,
        consent=ConsentOut.of(consent) if consent else None,
        uploads=int(count),
        latest_upload=LatestUpload(
            upload_id=latest.upload_id, status=latest.status, created_at=latest.created_at
        )
        if latest
        else None,
    )


@router.get("/api/v1/profile/{user_id}", response_model=ProfileOut, summary="The user's profile and consent")
async def get_profile(
    user_id: str, principal: Principal = Depends(require_user_access), db: Database = Depends(database)
) -> ProfileOut:
    return await load_profile(db, user_id, principal)


@router.get(
    "/api/v1/mobile/profile/{user_id}", response_model=MobileProfile, summary="Compact profile, for iOS"
)
async def get_mobile_profile(
    user_id: str,
    request: Request,
    response: Response,
    principal: Principal = Depends(require_user_access),
    db: Database = Depends(database),
) -> Any:
    full = await load_profile(db, user_id, principal)
    payload = MobileProfile(
        user_id=user_id,
        consent="granted" if full.consent else "none",
        latest_upload_status=full.latest_upload.status if full.latest_upload else None,
    )
    tag = (
        '"' + hashlib.sha256(json.dumps(payload.model_dump(), sort_keys=True).encode()).hexdigest()[:32] + '"'
    )
    headers = {"ETag": tag, "Cache-Control": "private, max-age=30"}
    if tag in request.headers.get("if-none-match", ""):
        return Response(status_code=304, headers=headers)
    response.headers.update(headers)
    return payload


class MobileConsent(BaseModel):
    model_config = ConfigDict(extra="forbid")

    policy_version: str | None = Field(None, min_length=1, max_length=32)
    scopes: list[str] | None = Field(None, max_length=10)


@router.post(
    "/api/v1/mobile/consent/{user_id}",
    status_code=201,
    response_model=ConsentOut,
    summary="Grant consent (mobile)",
)
async def post_mobile_consent(
    user_id: str,
    body: MobileConsent,
    principal: Principal = Depends(current_principal),
    db: Database = Depends(database),
) -> ConsentOut:
    request = ConsentRequest(user_id=user_id, policy_version=body.policy_version, scopes=body.scopes)
    return await post_consent(request, principal, db)


@router.post(
    "/api/v1/mobile/push/register", status_code=201, summary="Register a device for push notifications"
)
async def register_push(
    body: PushRegistration,
    principal: Principal = Depends(current_principal),
    db: Database = Depends(database),
) -> dict[str, str]:
    async with db.uow() as uow:
        await ConsentRepository(uow.session).ensure_profile(principal.user_id)
        # A token moves with its device: re-registering it under another user re-assigns it.
        await uow.session.execute(
            insert(push_devices)
            .values(token=body.token, user_id=principal.user_id, platform=body.platform)
            .on_conflict_do_update(
                index_elements=[push_devices.c.token],
                set_={"user_id": principal.user_id, "platform": body.platform, "registered_at": func.now()},
            )
        )
        await uow.commit()
    return {"status": "registered"}
