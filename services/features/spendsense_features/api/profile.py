"""``/api/v1/profile/{user_id}/signals`` and ``/persona``: the user's own signals and personas."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any, Literal

from fastapi import APIRouter, Depends, Query, Request, Response
from pydantic import BaseModel

from spendsense_features.domain.commands import GetPersona, GetSignals
from spendsense_features.domain.model import HistoryPosition
from spendsense_shared.http.cached import ReadCacheDep, cached_json
from spendsense_shared.http.cursor import CursorModel, CursorText, CursorTime, read_cursor
from spendsense_shared.http.deps import Bus
from spendsense_shared.http.errors import ApiError
from spendsense_shared.http.pagination import PageParams, encode_cursor, page_params
from spendsense_shared.http.paths import UserIdPath
from spendsense_shared.messagebus import MessageBus
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


@router.get("/{user_id}/signals", response_model=SignalsOut, summary="Signals for a window (30d or 180d)")
async def get_signals(
    user_id: UserIdPath,
    bus: Bus,
    window: Window = Query("30d", description="30d or 180d"),
    _: Principal = Depends(require_consented_user_access),
) -> SignalsOut:
    stored = await bus.handle(GetSignals(user_id=user_id, window=window))
    if stored is None:
        raise ApiError(404, "not_analyzed", f"no signals yet for {user_id}: upload data first")
    return SignalsOut(
        user_id=user_id,
        window=window,
        as_of=stored.as_of,
        upload_id=stored.upload_id,
        computed_at=stored.computed_at,
        signals=stored.values,
    )


class HistoryCursor(CursorModel):
    t: CursorTime
    w: CursorText


def _position(after: dict[str, Any] | None) -> HistoryPosition | None:
    cursor = read_cursor(after, HistoryCursor)
    return HistoryPosition(cursor.t, cursor.w) if cursor else None


@router.get(
    "/{user_id}/persona", response_model=PersonaOut, summary="Current persona per window, and history"
)
async def get_persona(
    user_id: UserIdPath,
    request: Request,
    bus: Bus,
    cache: ReadCacheDep,
    principal: Principal = Depends(require_consented_user_access),
    page: PageParams = Depends(page_params),
) -> Response:
    return await cached_json(request, cache, principal, user_id, lambda: _persona(bus, user_id, page))


async def _persona(bus: MessageBus, user_id: str, page: PageParams) -> PersonaOut:
    found = await bus.handle(GetPersona(user_id=user_id, limit=page.limit, after=_position(page.after)))
    if found is None:
        raise ApiError(404, "not_analyzed", f"no persona yet for {user_id}: upload data first")
    return PersonaOut(
        user_id=user_id,
        current={
            w: Assignment(
                primary=a.primary,
                matched=a.matched,
                rule_set_version=a.rule_set_version,
                as_of=a.as_of,
                assigned_at=a.assigned_at,
            )
            for w, a in found.current.items()
        },
        history=[
            Transition(
                window=t.window,
                persona=t.persona,
                previous=t.previous,
                rule_set_version=t.rule_set_version,
                as_of=t.as_of,
                assigned_at=t.assigned_at,
            )
            for t in found.history
        ],
        next_cursor=encode_cursor(
            {"t": found.next_after.assigned_at.isoformat(), "w": found.next_after.window}
        )
        if found.next_after
        else None,
    )
