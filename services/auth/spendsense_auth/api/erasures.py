"""``/api/v1/admin/erasures``: how far each user's erasure has got, per service (admins only). An erasure
is found by the erased user's id, which is hashed to the pseudonym it is kept under; nothing here
returns the id."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel, Field

from spendsense_auth.domain.commands import GetErasure, ListIncompleteErasures
from spendsense_auth.domain.erasure import ERASING_SERVICES, ErasureProgress
from spendsense_shared.http.deps import Bus
from spendsense_shared.http.errors import ApiError
from spendsense_shared.security import Principal, Role, require_role

router = APIRouter(prefix="/api/v1/admin/erasures", tags=["admin"])
Admin = Annotated[Principal, Depends(require_role(Role.admin))]


class ServiceProgressOut(BaseModel):
    service: str
    erased_at: datetime | None = Field(description="When the service confirmed; null while it has not")


class ErasureOut(BaseModel):
    subject: str = Field(description="The pseudonym the erasure is kept under")
    requested_at: datetime | None
    completed_at: datetime | None
    complete: bool
    pending: list[str]
    services: list[ServiceProgressOut]

    @classmethod
    def of(cls, progress: ErasureProgress) -> ErasureOut:
        return cls(
            subject=progress.subject,
            requested_at=progress.requested_at,
            completed_at=progress.completed_at,
            complete=progress.complete,
            pending=progress.pending,
            services=[
                ServiceProgressOut(service=s, erased_at=progress.confirmed.get(s)) for s in ERASING_SERVICES
            ],
        )


class ErasureListOut(BaseModel):
    items: list[ErasureOut]


@router.get("", response_model=ErasureListOut, summary="Erasures still waiting for a service, oldest first")
async def incomplete_erasures(bus: Bus, _: Admin, limit: int = Query(100, ge=1, le=500)) -> ErasureListOut:
    found = await bus.handle(ListIncompleteErasures(limit=limit))
    return ErasureListOut(items=[ErasureOut.of(p) for p in found])


@router.get("/{user_id}", response_model=ErasureOut, summary="One user's erasure progress, per service")
async def erasure_progress(user_id: str, bus: Bus, _: Admin) -> ErasureOut:
    found = await bus.handle(GetErasure(user_id=user_id))
    if found is None:
        raise ApiError(404, "not_found", "no erasure was requested for this user")
    return ErasureOut.of(found)
