"""The operator's repositories on PostgreSQL: the review queue and the audit log."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Select, delete, func, insert, select, tuple_, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.ext.asyncio import AsyncSession

from spendsense_operator.adapters.orm import audit_log, consent_projection, review_queue
from spendsense_operator.domain.model import (
    OPEN_STATUSES,
    AuditEntry,
    AuditFilter,
    QueuedItem,
    ReviewFilter,
    SortKey,
    Status,
)
from spendsense_operator.handlers.unit_of_work import AuditLog, ReviewQueue
from spendsense_shared.erasure import pseudonym

_ITEM_COLUMNS = [c.name for c in review_queue.columns]


def _item(row: Any) -> QueuedItem:
    return QueuedItem(**{name: getattr(row, name) for name in _ITEM_COLUMNS})


def _conditions(where: ReviewFilter, *, with_status: bool = True) -> list[ColumnElement[bool]]:
    q = review_queue.c
    consented = select(consent_projection.c.user_id).where(consent_projection.c.status == "granted")
    conditions: list[ColumnElement[bool]] = [q.user_id.in_(consented)]  # staff see only consented users
    if where.user_id is not None:
        conditions.append(q.user_id == where.user_id)
    if where.persona is not None:
        conditions.append(q.persona == where.persona)
    if where.kind is not None:
        conditions.append(q.kind == where.kind)
    if where.flagged is not None:
        conditions.append(q.flagged.is_(where.flagged))
    if with_status and where.status is not None:
        conditions.append(q.status == where.status)
    return conditions


class SqlReviewQueue(ReviewQueue):
    def __init__(self, session: AsyncSession):
        self.session = session

    async def add(self, items: list[QueuedItem]) -> list[str]:
        if not items:
            return []
        rows = [{name: getattr(i, name) for name in _ITEM_COLUMNS} for i in items]
        stmt = (
            pg_insert(review_queue)
            .values(rows)
            .on_conflict_do_nothing(index_elements=[review_queue.c.recommendation_id])
            .returning(review_queue.c.recommendation_id)
        )
        return [r[0] for r in await self.session.execute(stmt)]

    async def _locked(self, stmt: Select[Any]) -> list[QueuedItem]:
        rows = await self.session.execute(stmt.order_by(review_queue.c.recommendation_id).with_for_update())
        return [_item(r) for r in rows]

    async def get_many(self, recommendation_ids: list[str]) -> list[QueuedItem]:
        if not recommendation_ids:
            return []
        return await self._locked(
            select(review_queue).where(review_queue.c.recommendation_id.in_(recommendation_ids))
        )

    async def open_for_user(self, user_id: str) -> list[QueuedItem]:
        q = review_queue.c
        return await self._locked(
            select(review_queue).where(q.user_id == user_id, q.status.in_(OPEN_STATUSES))
        )

    async def decide(
        self, recommendation_id: str, status: Status, operator_id: str, reason: str | None, at: datetime
    ) -> None:
        values: dict[str, Any] = {
            "status": status,
            "decided_by": operator_id,
            "decided_at": at,
            "reason": reason,
        }
        if status == "flagged":
            values["flagged"] = True
        await self.session.execute(
            update(review_queue).where(review_queue.c.recommendation_id == recommendation_id).values(values)
        )

    async def page(
        self, where: ReviewFilter, sort: SortKey, limit: int, after: dict[str, Any] | None
    ) -> list[QueuedItem]:
        q = review_queue.c
        conditions = _conditions(where)
        if sort == "priority":
            key = tuple_(q.priority, q.created_at, q.recommendation_id)
            order = [q.priority.desc(), q.created_at.desc(), q.recommendation_id.desc()]
            if after is not None:
                conditions.append(key < tuple_(after["p"], datetime.fromisoformat(after["t"]), after["id"]))
        elif sort == "user":
            key = tuple_(q.user_id, q.created_at, q.recommendation_id)
            order = [q.user_id, q.created_at, q.recommendation_id]
            if after is not None:
                conditions.append(key > tuple_(after["u"], datetime.fromisoformat(after["t"]), after["id"]))
        else:
            key = tuple_(q.created_at, q.recommendation_id)
            order = [q.created_at.desc(), q.recommendation_id.desc()]
            if after is not None:
                conditions.append(key < tuple_(datetime.fromisoformat(after["t"]), after["id"]))
        stmt = select(review_queue).where(*conditions).order_by(*order).limit(limit)
        return [_item(r) for r in await self.session.execute(stmt)]

    async def counts(self, where: ReviewFilter) -> dict[str, int]:
        q = review_queue.c
        stmt = select(q.status, func.count()).where(*_conditions(where, with_status=False)).group_by(q.status)
        return {status: count for status, count in await self.session.execute(stmt)}

    async def merge_user(self, source_user_id: str, target_user_id: str) -> None:
        if source_user_id == target_user_id:
            return
        await self.session.execute(
            update(review_queue)
            .where(review_queue.c.user_id == source_user_id)
            .values(user_id=target_user_id)
        )

    async def erase_user(self, user_id: str) -> int:
        result = await self.session.execute(delete(review_queue).where(review_queue.c.user_id == user_id))
        return int(getattr(result, "rowcount", 0) or 0)


class SqlAuditLog(AuditLog):
    def __init__(self, session: AsyncSession):
        self.session = session

    async def add(self, entries: list[AuditEntry]) -> None:
        if not entries:
            return
        await self.session.execute(
            insert(audit_log),
            [
                {
                    "operator_id": e.operator_id,
                    "action": e.action,
                    "recommendation_id": e.recommendation_id,
                    "user_id": e.user_id,
                    "before_status": e.before_status,
                    "after_status": e.after_status,
                    "reason": e.reason,
                    "at": e.at,
                }
                for e in entries
            ],
        )

    async def pseudonymize_user(self, user_id: str) -> int:
        result = await self.session.execute(
            update(audit_log).where(audit_log.c.user_id == user_id).values(user_id=pseudonym(user_id))
        )
        return int(getattr(result, "rowcount", 0) or 0)

    async def page(self, where: AuditFilter, limit: int | None, after: int | None) -> list[AuditEntry]:
        a = audit_log.c
        conditions: list[ColumnElement[bool]] = []
        if where.operator_id is not None:
            conditions.append(a.operator_id == where.operator_id)
        if where.user_id is not None:
            conditions.append(a.user_id == where.user_id)
        if where.recommendation_id is not None:
            conditions.append(a.recommendation_id == where.recommendation_id)
        if after is not None:
            conditions.append(a.seq < after)
        stmt = select(audit_log).where(*conditions).order_by(a.seq.desc())
        if limit is not None:
            stmt = stmt.limit(limit)
        return [
            AuditEntry(
                operator_id=r.operator_id,
                action=r.action,
                recommendation_id=r.recommendation_id,
                user_id=r.user_id,
                before_status=r.before_status,
                after_status=r.after_status,
                reason=r.reason,
                at=r.at,
                seq=r.seq,
            )
            for r in await self.session.execute(stmt)
        ]
