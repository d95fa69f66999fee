"""``/api/v1/operator/users/{user_id}``: what an operator reads of one user — the latest signals of both
windows, the persona history (newest first, capped) and the user's recommendations in the review queue
with their states and decisions. Operators and admins only, and only while the user's consent is current
(403 ``consent_required``, every refusal logged); 404 when the operator knows nothing of the user."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any

from fastapi import APIRouter, Depends
from pydantic import BaseModel, Field

from spendsense_operator.domain.commands import GetUser
from spendsense_operator.domain.model import ConsentRequired, QueuedItem, UserNotFound
from spendsense_operator.domain.users import (
    PERSONA_HISTORY_MAX,
    USER_RECOMMENDATIONS_MAX,
    WINDOWS,
    PersonaRecord,
    UserDetail,
    WindowSignals,
)
from spendsense_shared.http.deps import Bus
from spendsense_shared.http.errors import ApiError
from spendsense_shared.logging import get_logger
from spendsense_shared.messaging.catalog import OverrideText
from spendsense_shared.security import Principal, Role, require_role

router = APIRouter(prefix="/api/v1/operator", tags=["operator"])
log = get_logger(__name__)
Operator = Depends(require_role(Role.operator))


class WindowSignalsOut(BaseModel):
    window: str
    as_of: date
    rule_set_version: str
    upload_id: str | None
    assigned_at: datetime
    signals: dict[str, Any] = Field(description="The analysis report's signals of the window")

    @classmethod
    def of(cls, s: WindowSignals) -> WindowSignalsOut:
        return cls(
            window=s.window,
            as_of=s.as_of,
            rule_set_version=s.rule_set_version,
            upload_id=s.upload_id,
            assigned_at=s.assigned_at,
            signals=s.signals,
        )


class PersonaOut(BaseModel):
    window: str
    persona: str
    matched: list[str]
    rule_set_version: str
    as_of: date
    upload_id: str | None
    reason: str
    assigned_at: datetime

    @classmethod
    def of(cls, r: PersonaRecord) -> PersonaOut:
        return cls(
            window=r.window,
            persona=r.persona,
            matched=r.matched,
            rule_set_version=r.rule_set_version,
            as_of=r.as_of,
            upload_id=r.upload_id,
            reason=r.reason,
            assigned_at=r.assigned_at,
        )


class UserRecommendationOut(BaseModel):
    recommendation_id: str
    kind: str
    persona: str
    title: str
    catalog_item_id: str
    catalog_version: str
    rank: int
    priority: int
    guardrails_passed: bool
    fell_back_to_template: bool
    status: str
    flagged: bool
    decided_by: str | None
    decided_at: datetime | None
    reason: str | None
    override: OverrideText | None
    created_at: datetime

    @classmethod
    def of(cls, i: QueuedItem) -> UserRecommendationOut:
        return cls(
            recommendation_id=i.recommendation_id,
            kind=i.kind,
            persona=i.persona,
            title=i.title,
            catalog_item_id=i.catalog_item_id,
            catalog_version=i.catalog_version,
            rank=i.rank,
            priority=i.priority,
            guardrails_passed=i.guardrails_passed,
            fell_back_to_template=i.fell_back_to_template,
            status=i.status,
            flagged=i.flagged,
            decided_by=i.decided_by,
            decided_at=i.decided_at,
            reason=i.reason,
            override=i.override,
            created_at=i.created_at,
        )


class UserDetailOut(BaseModel):
    user_id: str
    signals: dict[str, WindowSignalsOut | None] = Field(
        description="The latest signals per window (30d and 180d always listed; null: none yet)"
    )
    personas: dict[str, str] = Field(description="The current persona per window (the newest assignment)")
    persona_history: list[PersonaOut] = Field(
        description=f"Every assignment per window, newest first, at most {PERSONA_HISTORY_MAX}"
    )
    persona_history_truncated: bool
    recommendations: list[UserRecommendationOut] = Field(
        description=f"The user's items in the review queue, newest first, at most {USER_RECOMMENDATIONS_MAX}"
    )
    recommendations_truncated: bool
    counts: dict[str, int] = Field(description="The user's review items per status")

    @classmethod
    def of(cls, d: UserDetail) -> UserDetailOut:
        current: dict[str, str] = {}
        for record in d.personas:  # newest first: the first of each window is its current persona
            current.setdefault(record.window, record.persona)
        windows = [*WINDOWS, *sorted(set(d.signals) - set(WINDOWS))]
        return cls(
            user_id=d.user_id,
            signals={w: WindowSignalsOut.of(d.signals[w]) if w in d.signals else None for w in windows},
            personas=current,
            persona_history=[PersonaOut.of(r) for r in d.personas],
            persona_history_truncated=d.more_personas,
            recommendations=[UserRecommendationOut.of(i) for i in d.recommendations],
            recommendations_truncated=d.more_recommendations,
            counts=d.counts,
        )


@router.get(
    "/users/{user_id}",
    response_model=UserDetailOut,
    summary="A user's signals, persona history and review items (operators, with the user's current consent)",
)
async def get_user(user_id: str, bus: Bus, principal: Principal = Operator) -> UserDetailOut:
    try:
        detail = await bus.handle(GetUser(user_id))
    except UserNotFound as exc:
        raise ApiError(404, "not_found", "no such user") from exc
    except ConsentRequired as exc:
        log.warning(
            "access_denied",
            reason="consent_required",
            actor=principal.user_id,
            role=principal.role.name,
            users=exc.user_ids,
        )
        raise ApiError(403, "consent_required", "the user has not given current consent") from exc
    return UserDetailOut.of(detail)
