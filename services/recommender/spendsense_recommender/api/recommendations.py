"""``/api/v1/recommendations/{user_id}`` (approved items, paginated, ETag), feedback, decision traces,
and the compact mobile payload."""

from __future__ import annotations

import hashlib
import json
from datetime import datetime
from typing import Any, Literal, cast

from fastapi import APIRouter, Depends, Request, Response
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import and_, or_, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncConnection

from spendsense_recommender.adapters.orm import feedback, recommendations, traces
from spendsense_recommender.domain.replay import replay
from spendsense_recommender.domain.trace import verify_chain
from spendsense_shared.db import Database
from spendsense_shared.http.errors import ApiError
from spendsense_shared.http.pagination import PageParams, encode_cursor, page_params
from spendsense_shared.security import Principal, Role, require_consented_user_access

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

    recommendation_id: str = Field(min_length=1, max_length=64)
    kind: Literal["helpful", "not_helpful", "dismissed", "saved"]
    comment: str | None = Field(None, max_length=2000)


class TracePage(BaseModel):
    items: list[dict[str, Any]]
    chain: dict[str, Any]
    next_cursor: str | None = None


def database(request: Request) -> Database:
    return cast(Database, request.app.state.platform.database)


async def approved_page(db: Database, user_id: str, page: PageParams) -> tuple[list[Any], str | None]:
    query = select(recommendations).where(
        recommendations.c.user_id == user_id, recommendations.c.status == "approved"
    )
    if page.after:
        created, rank, rec_id = datetime.fromisoformat(page.after["t"]), page.after["r"], page.after["i"]
        query = query.where(
            or_(
                recommendations.c.created_at < created,
                and_(recommendations.c.created_at == created, recommendations.c.rank > rank),
                and_(
                    recommendations.c.created_at == created,
                    recommendations.c.rank == rank,
                    recommendations.c.id > rec_id,
                ),
            )
        )
    query = query.order_by(recommendations.c.created_at.desc(), recommendations.c.rank, recommendations.c.id)
    async with db.engine.connect() as conn:
        rows = (await conn.execute(query.limit(page.limit + 1))).all()
    more, rows = len(rows) > page.limit, rows[: page.limit]
    cursor = (
        encode_cursor({"t": rows[-1].created_at.isoformat(), "r": rows[-1].rank, "i": rows[-1].id})
        if more
        else None
    )
    return rows, cursor


def etag_of(payload: BaseModel) -> str:
    return (
        '"'
        + hashlib.sha256(json.dumps(payload.model_dump(mode="json"), sort_keys=True).encode()).hexdigest()[
            :32
        ]
        + '"'
    )


def conditional(
    request: Request, response: Response, payload: BaseModel, cache_control: str
) -> BaseModel | Response:
    tag = etag_of(payload)
    headers = {"ETag": tag, "Cache-Control": cache_control}
    if tag in [t.strip() for t in request.headers.get("if-none-match", "").split(",")]:
        return Response(status_code=304, headers=headers)
    response.headers.update(headers)
    return payload


@router.get(
    "/api/v1/recommendations/{user_id}", response_model=RecommendationPage, summary="Approved recommendations"
)
async def list_recommendations(
    user_id: str,
    request: Request,
    response: Response,
    _: Principal = Depends(require_consented_user_access),
    page: PageParams = Depends(page_params),
    db: Database = Depends(database),
) -> Any:
    rows, cursor = await approved_page(db, user_id, page)
    payload = RecommendationPage(
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
            for r in rows
        ],
        next_cursor=cursor,
    )
    return conditional(request, response, payload, "private, no-cache")


@router.get("/api/v1/mobile/recommendations/{user_id}", response_model=MobilePage, summary="Compact, for iOS")
async def mobile_recommendations(
    user_id: str,
    request: Request,
    response: Response,
    _: Principal = Depends(require_consented_user_access),
    page: PageParams = Depends(page_params),
    db: Database = Depends(database),
) -> Any:
    rows, cursor = await approved_page(db, user_id, page)
    payload = MobilePage(
        items=[MobileItem(id=r.id, kind=r.kind, title=r.title, rationale=r.rationale) for r in rows],
        next_cursor=cursor,
    )
    return conditional(request, response, payload, "private, max-age=60")


@router.post(
    "/api/v1/recommendations/{user_id}/feedback", status_code=201, summary="Helpful, dismissed, saved…"
)
async def post_feedback(
    user_id: str,
    body: FeedbackIn,
    principal: Principal = Depends(require_consented_user_access),
    db: Database = Depends(database),
) -> dict[str, str]:
    if principal.user_id != user_id:
        raise ApiError(403, "forbidden", "only the user gives feedback on their recommendations")
    async with db.uow() as uow:
        row = (
            await uow.session.execute(
                select(recommendations.c.item_id).where(
                    recommendations.c.id == body.recommendation_id,
                    recommendations.c.user_id == user_id,
                    recommendations.c.status == "approved",
                )
            )
        ).first()
        if row is None:
            raise ApiError(
                404, "not_found", f"recommendation_id: {body.recommendation_id} is not one of yours"
            )
        await uow.session.execute(
            insert(feedback).values(
                recommendation_id=body.recommendation_id,
                user_id=user_id,
                item_id=row.item_id,
                kind=body.kind,
                comment=body.comment,
            )
        )
        await uow.commit()
    return {"status": "recorded"}


def require_operator(principal: Principal) -> None:
    if not principal.has_role(Role.operator):
        raise ApiError(403, "forbidden", "decision traces are for operators")


async def user_chain(conn: AsyncConnection, user_id: str) -> list[dict[str, Any]]:
    """Every trace of the user, in chain order."""
    rows = await conn.execute(
        select(traces.c.trace).where(traces.c.user_id == user_id).order_by(traces.c.seq)
    )
    return [r.trace for r in rows]


@router.get(
    "/api/v1/recommendations/{user_id}/traces",
    response_model=TracePage,
    summary="Decision traces (operators)",
)
async def list_traces(
    user_id: str,
    principal: Principal = Depends(require_consented_user_access),
    page: PageParams = Depends(page_params),
    db: Database = Depends(database),
) -> TracePage:
    require_operator(principal)
    async with db.engine.connect() as conn:
        chain = await user_chain(conn, user_id)
        query = select(traces.c.seq, traces.c.trace).where(traces.c.user_id == user_id)
        if page.after:
            query = query.where(traces.c.seq > page.after["s"])
        rows = (await conn.execute(query.order_by(traces.c.seq).limit(page.limit + 1))).all()
    more, rows = len(rows) > page.limit, rows[: page.limit]
    verification = verify_chain(chain)
    return TracePage(
        items=[r.trace for r in rows],
        chain=verification.to_dict(),
        next_cursor=encode_cursor({"s": rows[-1].seq}) if more else None,
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
    user_id: str,
    recommendation_id: str,
    principal: Principal = Depends(require_consented_user_access),
    db: Database = Depends(database),
) -> TraceCheck:
    require_operator(principal)
    async with db.engine.connect() as conn:
        chain = await user_chain(conn, user_id)
    trace = next((t for t in chain if t.get("recommendation_id") == recommendation_id), None)
    if trace is None:
        raise ApiError(404, "not_found", f"no trace for {recommendation_id}")
    replayed = replay(trace)
    return TraceCheck(
        trace=trace,
        chain=verify_chain(chain).to_dict(),
        replay={"matches": replayed.matches, "differences": replayed.differences},
    )
