"""``/api/v1/operator/*``: the review queue (list, approve, reject, flag) and the audit log (JSON and
CSV). Operators only; a decision needs the current consent of every item's user."""

from __future__ import annotations

import csv
import io
from datetime import datetime
from typing import Any, Literal

from fastapi import APIRouter, Depends, Query
from fastapi.responses import Response
from pydantic import BaseModel, ConfigDict, Field, model_validator

from spendsense_operator.domain.commands import Decide, ListAudit, ListReview
from spendsense_operator.domain.model import (
    STATUSES,
    AuditEntry,
    AuditFilter,
    ConsentRequired,
    Decision,
    QueuedItem,
    RecommendationsNotFound,
    ReviewFilter,
    SortKey,
    Status,
    csv_safe,
)
from spendsense_shared.http.deps import Bus
from spendsense_shared.http.errors import ApiError
from spendsense_shared.http.pagination import PageParams, encode_cursor, page_params
from spendsense_shared.logging import get_logger
from spendsense_shared.security import Principal, Role, require_role

router = APIRouter(prefix="/api/v1/operator", tags=["operator"])
log = get_logger(__name__)
Operator = Depends(require_role(Role.operator))
MAX_IDS = 500


class ReviewItemOut(BaseModel):
    recommendation_id: str
    user_id: str
    upload_id: str | None
    persona: str
    kind: str
    title: str
    body: str
    rationale: str
    disclosure: str
    catalog_item_id: str
    catalog_version: str
    rank: int
    guardrails: dict[str, bool]
    guardrails_passed: bool
    generator: str
    fell_back_to_template: bool
    priority: int
    status: str
    flagged: bool
    created_at: datetime
    decided_by: str | None
    decided_at: datetime | None
    reason: str | None

    @classmethod
    def of(cls, item: QueuedItem) -> ReviewItemOut:
        return cls(
            recommendation_id=item.recommendation_id,
            user_id=item.user_id,
            upload_id=item.upload_id,
            persona=item.persona,
            kind=item.kind,
            title=item.title,
            body=item.body,
            rationale=item.rationale,
            disclosure=item.disclosure,
            catalog_item_id=item.catalog_item_id,
            catalog_version=item.catalog_version,
            rank=item.rank,
            guardrails=item.guardrails,
            guardrails_passed=item.guardrails_passed,
            generator=item.generator,
            fell_back_to_template=item.fell_back_to_template,
            priority=item.priority,
            status=item.status,
            flagged=item.flagged,
            created_at=item.created_at,
            decided_by=item.decided_by,
            decided_at=item.decided_at,
            reason=item.reason,
        )


class ReviewPageOut(BaseModel):
    items: list[ReviewItemOut]
    next_cursor: str | None
    counts: dict[str, int] = Field(description="Items per status under every filter but the status")


class ApproveIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    recommendation_ids: list[str] | None = Field(None, min_length=1, max_length=MAX_IDS)
    user_id: str | None = Field(
        None, min_length=1, description="Every open (pending or flagged) item of this user"
    )

    @model_validator(mode="after")
    def _one_selector(self) -> ApproveIn:
        if (self.recommendation_ids is None) == (self.user_id is None):
            raise ValueError("give exactly one of recommendation_ids or user_id")
        return self


class RejectIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    recommendation_ids: list[str] = Field(min_length=1, max_length=MAX_IDS)
    reason: str = Field(min_length=1, max_length=2000, pattern=r"\S", description="Why (required)")


class FlagIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    recommendation_ids: list[str] = Field(min_length=1, max_length=MAX_IDS)
    reason: str | None = Field(None, max_length=2000)


class DecisionOut(BaseModel):
    decision: str
    items: list[ReviewItemOut]


class AuditEntryOut(BaseModel):
    seq: int | None
    operator_id: str
    action: str
    recommendation_id: str
    user_id: str
    before_status: str
    after_status: str
    reason: str | None
    at: datetime

    @classmethod
    def of(cls, e: AuditEntry) -> AuditEntryOut:
        return cls(
            seq=e.seq,
            operator_id=e.operator_id,
            action=e.action,
            recommendation_id=e.recommendation_id,
            user_id=e.user_id,
            before_status=e.before_status,
            after_status=e.after_status,
            reason=e.reason,
            at=e.at,
        )


class AuditPageOut(BaseModel):
    items: list[AuditEntryOut]
    next_cursor: str | None


_CURSOR_KEYS: dict[str, dict[str, type]] = {
    "date": {"t": str, "id": str},
    "priority": {"p": int, "t": str, "id": str},
    "user": {"u": str, "t": str, "id": str},
}


def _review_position(after: dict[str, Any] | None, sort: SortKey) -> dict[str, Any] | None:
    if after is None:
        return None
    keys = _CURSOR_KEYS[sort]
    try:
        if set(after) != set(keys) or not all(isinstance(after[k], t) for k, t in keys.items()):
            raise ValueError("not this sort's cursor")
        datetime.fromisoformat(after["t"])
    except (TypeError, ValueError) as exc:
        raise ApiError(400, "invalid_cursor", "cursor: not a cursor this API issued for this sort") from exc
    return after


@router.get("/review", response_model=ReviewPageOut, summary="The review queue, filtered and sorted")
async def list_review(
    bus: Bus,
    user_id: str | None = Query(None),
    persona: str | None = Query(None),
    kind: Literal["education", "offer"] | None = Query(None),
    status: Status | None = Query(None, description=" | ".join(STATUSES)),
    flagged: bool | None = Query(None, description="Flagged for a second review"),
    sort: SortKey = Query("date", description="date (newest first), priority (highest first) or user"),
    page: PageParams = Depends(page_params),
    _: Principal = Operator,
) -> ReviewPageOut:
    found = await bus.handle(
        ListReview(
            filter=ReviewFilter(user_id=user_id, persona=persona, kind=kind, status=status, flagged=flagged),
            sort=sort,
            limit=page.limit,
            after=_review_position(page.after, sort),
        )
    )
    return ReviewPageOut(
        items=[ReviewItemOut.of(i) for i in found.items],
        next_cursor=encode_cursor(found.next_after) if found.next_after else None,
        counts=found.counts,
    )


async def _decide(bus: Any, principal: Principal, decision: Decision, **selector: Any) -> DecisionOut:
    try:
        result = await bus.handle(Decide(decision=decision, operator_id=principal.user_id, **selector))
    except RecommendationsNotFound as exc:
        raise ApiError(404, "not_found", str(exc), details={"recommendation_ids": exc.ids}) from exc
    except ConsentRequired as exc:
        log.warning("access_denied", reason="consent_required", actor=principal.user_id, users=exc.user_ids)
        raise ApiError(403, "consent_required", str(exc), details={"user_ids": exc.user_ids}) from exc
    return DecisionOut(decision=result.decision, items=[ReviewItemOut.of(i) for i in result.items])


@router.post("/approve", response_model=DecisionOut, summary="Approve items (by id, or a user's open items)")
async def approve(body: ApproveIn, bus: Bus, principal: Principal = Operator) -> DecisionOut:
    if body.user_id is not None:
        return await _decide(bus, principal, "approved", user_id=body.user_id)
    return await _decide(bus, principal, "approved", recommendation_ids=tuple(body.recommendation_ids or ()))


@router.post("/reject", response_model=DecisionOut, summary="Reject items, with a reason")
async def reject(body: RejectIn, bus: Bus, principal: Principal = Operator) -> DecisionOut:
    return await _decide(
        bus, principal, "rejected", recommendation_ids=tuple(body.recommendation_ids), reason=body.reason
    )


@router.post("/flag", response_model=DecisionOut, summary="Flag items for a second review")
async def flag(body: FlagIn, bus: Bus, principal: Principal = Operator) -> DecisionOut:
    return await _decide(
        bus, principal, "flagged", recommendation_ids=tuple(body.recommendation_ids), reason=body.reason
    )


def _audit_filter(
    operator_id: str | None = Query(None),
    user_id: str | None = Query(None),
    recommendation_id: str | None = Query(None),
) -> AuditFilter:
    return AuditFilter(operator_id=operator_id, user_id=user_id, recommendation_id=recommendation_id)


def _audit_position(after: dict[str, Any] | None) -> int | None:
    if after is None:
        return None
    seq = after.get("s")
    if set(after) != {"s"} or not isinstance(seq, int) or isinstance(seq, bool):
        raise ApiError(400, "invalid_cursor", "cursor: not a cursor this API issued")
    return seq


@router.get("/audit", response_model=AuditPageOut, summary="Every operator action, newest first")
async def list_audit(
    bus: Bus,
    where: AuditFilter = Depends(_audit_filter),
    page: PageParams = Depends(page_params),
    _: Principal = Operator,
) -> AuditPageOut:
    found = await bus.handle(ListAudit(filter=where, limit=page.limit, after=_audit_position(page.after)))
    return AuditPageOut(
        items=[AuditEntryOut.of(e) for e in found.items],
        next_cursor=encode_cursor({"s": found.next_after}) if found.next_after is not None else None,
    )


AUDIT_COLUMNS = (
    "seq",
    "at",
    "operator_id",
    "action",
    "recommendation_id",
    "user_id",
    "before_status",
    "after_status",
    "reason",
)


@router.get(
    "/audit.csv",
    response_class=Response,
    responses={200: {"content": {"text/csv": {}}}},
    summary="The audit log as CSV (safe against formula injection)",
)
async def export_audit(
    bus: Bus, where: AuditFilter = Depends(_audit_filter), _: Principal = Operator
) -> Response:
    found = await bus.handle(ListAudit(filter=where, limit=None))
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(AUDIT_COLUMNS)
    for entry in found.items:
        row = AuditEntryOut.of(entry).model_dump(mode="json")
        writer.writerow([csv_safe(row[c]) for c in AUDIT_COLUMNS])
    return Response(
        out.getvalue(),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": 'attachment; filename="operator-audit.csv"'},
    )
