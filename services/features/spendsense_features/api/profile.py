"""``/api/v1/profile/{user_id}/signals`` and ``/persona``: the user's own signals and personas."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any, Literal, cast

from fastapi import APIRouter, Depends, Query, Request
from pydantic import BaseModel
from sqlalchemy import and_, or_, select

from spendsense_features.adapters.orm import persona_assignments, persona_history, signals
from spendsense_shared.db import Database
from spendsense_shared.http.errors import ApiError
from spendsense_shared.http.pagination import PageParams, encode_cursor, page_params
from spendsense_shared.security import Principal, require_consented_user_access

router = APIRouter(prefix="/api/v1/profile", tags=["profile"])
Window = Literal["30d", "180d"]


class SignalsOut(BaseModel):
    user_id: str
    window: Window
    as_of: date
    upload_id: str | None
    computed_at: datetime
    signals: dict[str, Any]


class Assignment(BaseModel):
    primary: str
    matched: list[dict[str, Any]]
    rule_set_version: str
    as_of: date
    assigned_at: datetime


class Transition(BaseModel):
    window: Window
    persona: str
    previous: str | None
    rule_set_version: str
    as_of: date
    assigned_at: datetime


class PersonaOut(BaseModel):
    user_id: str
    current: dict[str, Assignment]
    history: list[Transition]
    next_cursor: str | None = None


def database(request: Request) -> Database:
    return cast(Database, request.app.state.platform.database)


@router.get("/{user_id}/signals", response_model=SignalsOut, summary="Signals for a window (30d or 180d)")
async def get_signals(
    user_id: str,
    window: Window = Query("30d", description="30d or 180d"),
    _: Principal = Depends(require_consented_user_access),
    db: Database = Depends(database),
) -> SignalsOut:
    async with db.engine.connect() as conn:
        row = (
            await conn.execute(
                select(signals).where(signals.c.user_id == user_id, signals.c.window == window)
            )
        ).first()
    if row is None:
        raise ApiError(404, "not_analyzed", f"no signals yet for {user_id}: upload data first")
    return SignalsOut(
        user_id=user_id,
        window=window,
        as_of=row.as_of,
        upload_id=row.upload_id,
        computed_at=row.computed_at,
        signals=row.values,
    )


@router.get(
    "/{user_id}/persona", response_model=PersonaOut, summary="Current persona per window, and history"
)
async def get_persona(
    user_id: str,
    _: Principal = Depends(require_consented_user_access),
    page: PageParams = Depends(page_params),
    db: Database = Depends(database),
) -> PersonaOut:
    history = select(persona_history).where(persona_history.c.user_id == user_id)
    if page.after:
        after_time, after_window = datetime.fromisoformat(page.after["t"]), page.after["w"]
        history = history.where(
            or_(
                persona_history.c.assigned_at < after_time,
                and_(persona_history.c.assigned_at == after_time, persona_history.c.window < after_window),
            )
        )
    history = history.order_by(persona_history.c.assigned_at.desc(), persona_history.c.window.desc())
    async with db.engine.connect() as conn:
        current = (
            await conn.execute(select(persona_assignments).where(persona_assignments.c.user_id == user_id))
        ).all()
        rows = (await conn.execute(history.limit(page.limit + 1))).all()
    if not current:
        raise ApiError(404, "not_analyzed", f"no persona yet for {user_id}: upload data first")
    more = len(rows) > page.limit
    rows = rows[: page.limit]
    return PersonaOut(
        user_id=user_id,
        current={
            r.window: Assignment(
                primary=r.primary_persona,
                matched=r.matched,
                rule_set_version=r.rule_set_version,
                as_of=r.as_of,
                assigned_at=r.assigned_at,
            )
            for r in current
        },
        history=[
            Transition(
                window=r.window,
                persona=r.primary_persona,
                previous=r.previous_persona,
                rule_set_version=r.rule_set_version,
                as_of=r.as_of,
                assigned_at=r.assigned_at,
            )
            for r in rows
        ],
        next_cursor=encode_cursor({"t": rows[-1].assigned_at.isoformat(), "w": rows[-1].window})
        if more
        else None,
    )
