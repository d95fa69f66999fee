"""``/api/v1/consent``: grant, read (with history) and revoke consent."""

from __future__ import annotations

from datetime import datetime

from fastapi import APIRouter, Depends, Query, Request, Response
from pydantic import BaseModel, ConfigDict, Field

from spendsense_profile.domain.commands import (
    EraseUser,
    GetConsentHistory,
    GetProfile,
    GrantConsent,
    RevokeConsent,
)
from spendsense_profile.domain.consent import Consent, ConsentError
from spendsense_shared.http.cached import ReadCacheDep, cached_json
from spendsense_shared.http.deps import Bus
from spendsense_shared.http.errors import ApiError
from spendsense_shared.http.paths import UserIdPath
from spendsense_shared.logging import get_logger
from spendsense_shared.security import Principal, Role, current_principal
from spendsense_shared.text import StoredText

router = APIRouter(prefix="/api/v1/consent", tags=["consent"])
log = get_logger(__name__)


class ConsentRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    user_id: StoredText = Field(min_length=1, max_length=128)
    policy_version: StoredText | None = Field(None, min_length=1, max_length=32)
    scopes: list[StoredText] | None = Field(None, max_length=10)


class ConsentOut(BaseModel):
    consent_id: str
    user_id: str
    policy_version: str
    scopes: list[str]
    granted_at: datetime
    revoked_at: datetime | None
    status: str

    @classmethod
    def of(cls, consent: Consent) -> ConsentOut:
        return cls(
            consent_id=consent.consent_id,
            user_id=consent.user_id,
            policy_version=consent.policy_version,
            scopes=list(consent.scopes),
            granted_at=consent.granted_at,
            revoked_at=consent.revoked_at,
            status="granted" if consent.is_current else "revoked",
        )


class ConsentStatus(BaseModel):
    user_id: str
    current: ConsentOut | None
    history: list[ConsentOut]


def _self_or(principal: Principal, user_id: str, role: Role, action: str) -> None:
    if principal.user_id != user_id and not principal.has_role(role):
        log.warning("access_denied", reason="not_owner", action=action, actor=principal.user_id)
        raise ApiError(403, "forbidden", f"only the user (or an {role.name}) may {action} this consent")


@router.post(
    "",
    status_code=201,
    response_model=ConsentOut,
    summary="Grant consent (supersedes a current one; the same grant again returns the current one)",
)
async def post_consent(
    body: ConsentRequest, bus: Bus, principal: Principal = Depends(current_principal)
) -> ConsentOut:
    if principal.user_id != body.user_id:  # consent is the user's own act; nobody grants it for them
        raise ApiError(403, "forbidden", "user_id: a user may grant consent only for themself")
    try:
        consent = await bus.handle(GrantConsent(body.user_id, body.policy_version, body.scopes))
    except ConsentError as exc:
        raise ApiError(422, exc.code, str(exc)) from exc
    return ConsentOut.of(consent)


@router.get("/{user_id}", response_model=ConsentStatus, summary="Current consent and full history")
async def get_consent(
    user_id: str,
    request: Request,
    bus: Bus,
    cache: ReadCacheDep,
    principal: Principal = Depends(current_principal),
) -> Response:
    _self_or(principal, user_id, Role.operator, "read")

    async def build() -> ConsentStatus:
        history = [ConsentOut.of(c) for c in await bus.handle(GetConsentHistory(user_id))]
        if not history and await bus.handle(GetProfile(user_id)) is None:  # unknown, or erased
            raise ApiError(404, "not_found", "no such user")
        current = next((c for c in history if c.status == "granted"), None)
        return ConsentStatus(user_id=user_id, current=current, history=history)

    return await cached_json(request, cache, principal, user_id, build)


class ErasureOut(BaseModel):
    user_id: str
    status: str = "erasure_requested"
    requested_at: datetime
    consent_revoked: bool
    next: str = Field(
        "Everything the profile held of the user is deleted. Every other service now deletes its own data "
        "of the user as it receives user.erasure_requested: the account and sign-in methods (auth), "
        "signals and personas (features), recommendations, traces and feedback (recommender), review "
        "items (operator; the audit log keeps the operators' actions under a one-way hash of the id). "
        "This cannot be undone."
    )


@router.delete(
    "/{user_id}",
    response_model=ConsentOut | ErasureOut,
    summary="Revoke consent: all processing stops; with erase=true, erase the user everywhere",
    responses={202: {"model": ErasureOut, "description": "Erasure requested (erase=true)"}},
)
async def delete_consent(
    user_id: UserIdPath,
    bus: Bus,
    response: Response,
    erase: bool = Query(
        False, description="Also erase everything SpendSense holds of the user (the right to be forgotten)"
    ),
    principal: Principal = Depends(current_principal),
) -> ConsentOut | ErasureOut:
    _self_or(principal, user_id, Role.admin, "erase" if erase else "revoke")
    if erase:
        erased = await bus.handle(EraseUser(user_id))
        response.status_code = 202
        return ErasureOut(
            user_id=user_id, requested_at=erased.requested_at, consent_revoked=erased.consent_revoked
        )
    try:
        revoked = await bus.handle(RevokeConsent(user_id))
    except ConsentError as exc:
        raise ApiError(404, exc.code, str(exc)) from exc
    return ConsentOut.of(revoked)
