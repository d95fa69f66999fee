"""``/api/v1/recommendations/{user_id}`` (the items the user sees: approved, or overridden with the
override's text; paginated, ETag), feedback, decision traces, and the compact mobile payload. Every route
answers 404 for an erased user (the access checks of :mod:`spendsense_shared.security` find the consent
projection's tombstone)."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from fastapi import APIRouter, Depends, Request
from pydantic import BaseModel, ConfigDict, Field

from spendsense_recommender.domain.commands import (
    ApprovedRecommendations,
    CheckTrace,
    ListTraces,
    RecordFeedback,
)
from spendsense_recommender.domain.model import ApprovedPage, ApprovedPosition, RecommendationNotFound
from spendsense_shared.http.cached import ReadCacheDep, cached_json
from spendsense_shared.http.cursor import CursorInt, CursorModel, CursorText, CursorTime, read_cursor
from spendsense_shared.http.deps import Bus
from spendsense_shared.http.errors import ApiError
from spendsense_shared.http.pagination import PageParams, encode_cursor, page_params
from spendsense_shared.http.paths import UserIdPath
from spendsense_shared.security import Principal, Role, require_consented_user_access
from spendsense_shared.text import StoredText

router = APIRouter(tags=["recommendations"])


class RecommendationOut(BaseModel):
    id: str
    kind: str
    title: str
    body: str
    rationale: str
    disclosure: str
    status: str
    persona: str
    details: dict[str, Any]
    created_at: datetime


class RecommendationPage(BaseModel):
    items: list[RecommendationOut]
    next_cursor: str | None = None


class MobileItem(BaseModel):
    id: str
    kind: str
    title: str
    rationale: str


class MobilePage(BaseModel):
    items: list[MobileItem]
    next_cursor: str | None = None


class FeedbackIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    recommendation_id: StoredText = Field(min_length=1, max_length=64)
    kind: Literal["helpful", "not_helpful", "dismissed", "saved"]
    comment: StoredText | None = Field(None, max_length=2000)


class TracePage(BaseModel):
    items: list[dict[str, Any]]
    chain: dict[str, Any]
    next_cursor: str | None = None


class ApprovedCursor(CursorModel):
    t: CursorTime
    r: CursorInt
    i: CursorText


class SeqCursor(CursorModel):
    s: CursorInt


def _approved_position(after: dict[str, Any] | None) -> ApprovedPosition | None:
    cursor = read_cursor(after, ApprovedCursor)
    return ApprovedPosition(cursor.t, cursor.r, cursor.i) if cursor else None


def _seq(after: dict[str, Any] | None) -> int | None:
    cursor = read_cursor(after, SeqCursor)
    return cursor.s if cursor else None


async def approved_page(bus: Bus, user_id: str, page: PageParams) -> tuple[ApprovedPage, str | None]:
    found = await bus.handle(
        ApprovedRecommendations(user_id=user_id, limit=page.limit, after=_approved_position(page.after))
    )
    end = found.next_after
    cursor = encode_cursor({"t": end.created_at.isoformat(), "r": end.rank, "i": end.id}) if end else None
    return found, cursor


@router.get(
    "/api/v1/recommendations/{user_id}",
    response_model=RecommendationPage,
    summary="The recommendations the user sees (approved, or overridden: with the override text)",
)
async def list_recommendations(
    user_id: UserIdPath,
    request: Request,
    bus: Bus,
    cache: ReadCacheDep,
    principal: Principal = Depends(require_consented_user_access),
    page: PageParams = Depends(page_params),
) -> Any:
    async def build() -> RecommendationPage:
        found, cursor = await approved_page(bus, user_id, page)
        return RecommendationPage(
            items=[
                RecommendationOut(
                    id=r.id,
                    kind=r.kind,
                    title=r.title,
                    body=r.body,
                    rationale=r.rationale,
                    disclosure=r.disclosure,
                    status=r.status,
                    persona=r.persona,
                    details=r.details,
                    created_at=r.created_at,
                )
                for r in found.items
            ],
            next_cursor=cursor,
        )

    return await cached_json(request, cache, principal, user_id, build)


@router.get("/api/v1/mobile/recommendations/{user_id}", response_model=MobilePage, summary="Compact, for iOS")
async def mobile_recommendations(
    user_id: UserIdPath,
    request: Request,
    bus: Bus,
    cache: ReadCacheDep,
    principal: Principal = Depends(require_consented_user_access),
    page: PageParams = Depends(page_params),
) -> Any:
    async def build() -> MobilePage:
        found, cursor = await approved_page(bus, user_id, page)
        items = [MobileItem(id=r.id, kind=r.kind, title=r.title, rationale=r.rationale) for r in found.items]
        return MobilePage(items=items, next_cursor=cursor)

    return await cached_json(request, cache, principal, user_id, build, "private, max-age=60")


@router.post(
    "/api/v1/recommendations/{user_id}/feedback", status_code=201, summary="Helpful, dismissed, saved…"
)
async def post_feedback(
    user_id: UserIdPath,
    body: FeedbackIn,
    bus: Bus,
    principal: Principal = Depends(require_consented_user_access),
) -> dict[str, str]:
    if principal.user_id != user_id:
        raise ApiError(403, "forbidden", "only the user gives feedback on their recommendations")
    try:
        await bus.handle(
            RecordFeedback(
                user_id=user_id,
                recommendation_id=body.recommendation_id,
                kind=body.kind,
                comment=body.comment,
            )
        )
    except RecommendationNotFound as exc:
        raise ApiError(404, "not_found", str(exc)) from exc
    return {"status": "recorded"}


def require_operator(principal: Principal) -> None:
    if not principal.has_role(Role.operator):
        raise ApiError(403, "forbidden", "decision traces are for operators")


@router.get(
    "/api/v1/recommendations/{user_id}/traces",
    response_model=TracePage,
    summary="Decision traces (operators)",
)
async def list_traces(
    user_id: UserIdPath,
    bus: Bus,
    principal: Principal = Depends(require_consented_user_access),
    page: PageParams = Depends(page_params),
) -> TracePage:
    require_operator(principal)
    found = await bus.handle(ListTraces(user_id=user_id, limit=page.limit, after_seq=_seq(page.after)))
    return TracePage(
        items=found.items,
        chain=found.chain,
        next_cursor=encode_cursor({"s": found.next_after}) if found.next_after is not None else None,
    )


class TraceCheck(BaseModel):
    trace: dict[str, Any]
    chain: dict[str, Any]
    replay: dict[str, Any]


@router.get(
    "/api/v1/recommendations/{user_id}/traces/{recommendation_id}",
    response_model=TraceCheck,
    summary="One decision trace, with its chain verified and the decision replayed (operators)",
)
async def get_trace(
    user_id: UserIdPath,
    recommendation_id: str,
    bus: Bus,
    principal: Principal = Depends(require_consented_user_access),
) -> TraceCheck:
    require_operator(principal)
    found = await bus.handle(CheckTrace(user_id=user_id, recommendation_id=recommendation_id))
    if found is None:
        raise ApiError(404, "not_found", f"no trace for {recommendation_id}")
    return TraceCheck(trace=found.trace, chain=found.chain, replay=found.replay)
