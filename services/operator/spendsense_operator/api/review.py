"""``/api/v1/operator/*``: the review queue (list, approve — by ids, by user, or in bulk by persona or
kind —, reject, flag, override and its check) and the audit log (JSON and CSV). Operators only; a decision
needs the current consent of every item's user (a bulk approval by filter leaves the others out)."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Any, Literal

from fastapi import APIRouter, Depends, Query
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from pydantic import BaseModel, ConfigDict, Field

from spendsense_operator.domain.commands import (
    ApproveMatching,
    CheckOverride,
    Decide,
    ListAudit,
    ListReview,
    Override,
)
from spendsense_operator.domain.model import (
    BULK_APPROVE_MAX,
    STATUSES,
    AuditEntry,
    AuditFilter,
    ConsentRequired,
    Decision,
    DecisionResult,
    MatchFilter,
    QueuedItem,
    RecommendationsNotFound,
    ReviewFilter,
    SortKey,
    Status,
    csv_safe,
)
from spendsense_operator.domain.override import EditedText, GuardrailsFailed, NotAnAlternative
from spendsense_shared.http.cursor import CursorInt, CursorModel, CursorText, CursorTime, read_cursor
from spendsense_shared.http.deps import Bus
from spendsense_shared.http.errors import ApiError
from spendsense_shared.http.pagination import PageParams, encode_cursor, page_params
from spendsense_shared.logging import get_logger
from spendsense_shared.messaging.catalog import OverrideText
from spendsense_shared.messaging.contracts import Alternative, CitableFact
from spendsense_shared.security import Principal, Role, require_role
from spendsense_shared.text import StoredText

router = APIRouter(prefix="/api/v1/operator", tags=["operator"])
log = get_logger(__name__)
Operator = Depends(require_role(Role.operator))
MAX_IDS = 500
TEXT_MAX = 10_000  # per field of an edited text: the guardrails' length check states the real limits


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
    facts: list[CitableFact] = Field(
        description="The figures the text may cite (an edit is checked against them)"
    )
    alternatives: list[Alternative] = Field(description="Catalog items it may be overridden with")
    override: OverrideText | None = Field(description="The text shown instead (status overridden)")

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
            facts=item.facts,
            alternatives=item.alternatives,
            override=item.override,
        )


class ReviewPageOut(BaseModel):
    items: list[ReviewItemOut]
    next_cursor: str | None
    counts: dict[str, int] = Field(description="Items per status under every filter but the status")


def _invalid(*errors: tuple[str, str]) -> RequestValidationError:
    """A 422 naming each field, in the shape every validation error has."""
    return RequestValidationError(
        [
            {"loc": ("body", *field.split(".")), "msg": message, "type": "value_error"}
            for field, message in errors
        ]
    )


def _exactly_one(body: BaseModel, *names: str) -> str:
    given = [n for n in names if getattr(body, n) is not None]
    if len(given) == 1:
        return given[0]
    choice = ", ".join(names[:-1]) + f" or {names[-1]}"
    if not given:
        raise _invalid(*((n, f"give exactly one of {choice}") for n in names))
    raise _invalid(*((n, f"give only one of {choice}, not {' and '.join(given)}") for n in given))


class MatchIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    persona: StoredText | None = Field(None, min_length=1, description="The items' persona")
    kind: Literal["education", "offer"] | None = Field(None, description="The items' kind")


class ApproveIn(BaseModel):
    """Exactly one of ``recommendation_ids``, ``user_id`` or ``filter``."""

    model_config = ConfigDict(extra="forbid")

    recommendation_ids: list[StoredText] | None = Field(None, min_length=1, max_length=MAX_IDS)
    user_id: StoredText | None = Field(
        None, min_length=1, description="Every open (pending or flagged) item of this user"
    )
    filter: MatchIn | None = Field(
        None,
        description="Every open item of this persona and/or kind (at least one) among users whose consent is "
        f"current, oldest first, at most `limit` (default and cap {BULK_APPROVE_MAX}) per call",
    )
    limit: int | None = Field(None, ge=1, le=BULK_APPROVE_MAX, description="With `filter` only")


class EditedTextIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    title: StoredText = Field(max_length=TEXT_MAX)
    body: StoredText = Field(max_length=TEXT_MAX)
    rationale: StoredText = Field(max_length=TEXT_MAX)


class OverrideCheckIn(BaseModel):
    """Exactly one of ``text`` (edited; the disclosure is always the standard one) and ``catalog_item_id``
    (one of the item's alternatives)."""

    model_config = ConfigDict(extra="forbid")

    recommendation_id: StoredText = Field(min_length=1)
    text: EditedTextIn | None = None
    catalog_item_id: StoredText | None = Field(None, min_length=1)
    reason: StoredText | None = Field(None, max_length=2000)


class OverrideIn(OverrideCheckIn):
    reason: StoredText = Field(min_length=1, max_length=2000, pattern=r"\S", description="Why (required)")


class OverrideOut(BaseModel):
    decision: Literal["overridden"] = "overridden"
    item: ReviewItemOut
    report: dict[str, Any] = Field(description="The guardrail checks the new text passed")


class OverrideCheckOut(BaseModel):
    recommendation_id: str
    passed: bool
    report: dict[str, Any] = Field(
        description="passed, reasons, source, and each check: tone (hits per field), grounding (claims, "
        "unmatched; checked_by operator, or recommender for a catalog item), disclosure, length (limits)"
    )


class RejectIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    recommendation_ids: list[StoredText] = Field(min_length=1, max_length=MAX_IDS)
    reason: StoredText = Field(min_length=1, max_length=2000, pattern=r"\S", description="Why (required)")


class FlagIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    recommendation_ids: list[StoredText] = Field(min_length=1, max_length=MAX_IDS)
    reason: StoredText | None = Field(None, max_length=2000)


class DecisionOut(BaseModel):
    decision: str
    items: list[ReviewItemOut]
    remaining: int | None = Field(
        None, description="A bulk approval by filter: open items still matching it (another call takes them)"
    )

    @classmethod
    def of(cls, result: DecisionResult) -> DecisionOut:
        return cls(
            decision=result.decision,
            items=[ReviewItemOut.of(i) for i in result.items],
            remaining=result.remaining,
        )


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
    before: dict[str, Any] | None = Field(None, description="An override: the text shown before it")
    after: dict[str, Any] | None = Field(None, description="An override: the text shown instead")

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
            before=e.before,
            after=e.after,
        )


class AuditPageOut(BaseModel):
    items: list[AuditEntryOut]
    next_cursor: str | None


class _DateCursor(CursorModel):
    t: CursorTime
    id: CursorText


class _PriorityCursor(_DateCursor):
    p: CursorInt


class _UserCursor(_DateCursor):
    u: CursorText


_CURSORS: dict[str, type[CursorModel]] = {
    "date": _DateCursor,
    "priority": _PriorityCursor,
    "user": _UserCursor,
}


def _review_position(after: dict[str, Any] | None, sort: SortKey) -> dict[str, Any] | None:
    """The cursor as issued (its keys depend on the sort), once it checks out as this sort's."""
    return after if read_cursor(after, _CURSORS[sort]) else None


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


@contextmanager
def _refusals(principal: Principal) -> Iterator[None]:
    """The errors every decision may answer: unknown ids (404), a user without current consent (403,
    logged), an override's unknown alternative or failed checks (422)."""
    try:
        yield
    except RecommendationsNotFound as exc:
        details = {"recommendation_ids": exc.ids}
        raise ApiError(404, "not_found", str(exc), details=details) from exc
    except ConsentRequired as exc:
        log.warning("access_denied", reason="consent_required", actor=principal.user_id, users=exc.user_ids)
        raise ApiError(403, "consent_required", str(exc), details={"user_ids": exc.user_ids}) from exc
    except NotAnAlternative as exc:
        details = {
            "field": "catalog_item_id",
            "catalog_item_id": exc.catalog_item_id,
            "alternatives": exc.allowed,
        }
        raise ApiError(422, "not_an_alternative", f"catalog_item_id: {exc}", details=details) from exc
    except GuardrailsFailed as exc:
        raise ApiError(422, "guardrails_failed", str(exc), details=exc.report.to_dict()) from exc


async def _decide(bus: Any, principal: Principal, decision: Decision, **selector: Any) -> DecisionOut:
    with _refusals(principal):
        result = await bus.handle(Decide(decision=decision, operator_id=principal.user_id, **selector))
    return DecisionOut.of(result)


@router.post(
    "/approve",
    response_model=DecisionOut,
    summary="Approve items: by id, a user's open items, or open items by persona and/or kind (in bulk)",
)
async def approve(body: ApproveIn, bus: Bus, principal: Principal = Operator) -> DecisionOut:
    selector = _exactly_one(body, "recommendation_ids", "user_id", "filter")
    if body.limit is not None and selector != "filter":
        raise _invalid(("limit", "only with filter"))
    if selector == "user_id":
        return await _decide(bus, principal, "approved", user_id=body.user_id)
    if selector == "recommendation_ids":
        return await _decide(
            bus, principal, "approved", recommendation_ids=tuple(body.recommendation_ids or ())
        )
    assert body.filter is not None
    if body.filter.persona is None and body.filter.kind is None:
        raise _invalid(("filter", "name a persona, a kind, or both"))
    where = MatchFilter(persona=body.filter.persona, kind=body.filter.kind)
    command = ApproveMatching(where, principal.user_id, body.limit or BULK_APPROVE_MAX)
    return DecisionOut.of(await bus.handle(command))


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


def _edit(body: OverrideCheckIn) -> tuple[EditedText | None, str | None]:
    _exactly_one(body, "text", "catalog_item_id")
    text = body.text
    return (None if text is None else EditedText(text.title, text.body, text.rationale)), body.catalog_item_id


@router.post(
    "/override",
    response_model=OverrideOut,
    summary="Put edited text, or one of the item's alternatives, in place of a recommendation's text",
)
async def override(body: OverrideIn, bus: Bus, principal: Principal = Operator) -> OverrideOut:
    text, catalog_item_id = _edit(body)
    command = Override(body.recommendation_id, principal.user_id, body.reason, text, catalog_item_id)
    with _refusals(principal):
        result = await bus.handle(command)
    return OverrideOut(item=ReviewItemOut.of(result.item), report=result.report.to_dict())


@router.post(
    "/override/check",
    response_model=OverrideCheckOut,
    summary="Run an override's guardrail checks without saving anything (the override editor)",
)
async def check_override(
    body: OverrideCheckIn, bus: Bus, principal: Principal = Operator
) -> OverrideCheckOut:
    text, catalog_item_id = _edit(body)
    with _refusals(principal):
        report = await bus.handle(CheckOverride(body.recommendation_id, text, catalog_item_id))
    return OverrideCheckOut(
        recommendation_id=body.recommendation_id, passed=report.passed, report=report.to_dict()
    )


def _audit_filter(
    operator_id: str | None = Query(None),
    user_id: str | None = Query(None),
    recommendation_id: str | None = Query(None),
) -> AuditFilter:
    return AuditFilter(operator_id=operator_id, user_id=user_id, recommendation_id=recommendation_id)


class _AuditCursor(CursorModel):
    s: CursorInt


def _audit_position(after: dict[str, Any] | None) -> int | None:
    cursor = read_cursor(after, _AuditCursor)
    return cursor.s if cursor else None


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
    "before",
    "after",
)


def _cell(value: Any) -> str:
    text = json.dumps(value, ensure_ascii=False, sort_keys=True) if isinstance(value, dict) else value
    return csv_safe(text)


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
        writer.writerow([_cell(row[c]) for c in AUDIT_COLUMNS])
    return Response(
        out.getvalue(),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": 'attachment; filename="operator-audit.csv"'},
    )
