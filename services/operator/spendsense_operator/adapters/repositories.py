"""The operator's repositories on PostgreSQL: the review queue, the audit log and the projection of the
users' personas and signals."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Select,
    case,
    cast,
    delete,
    exists,
    func,
    insert,
    select,
    tuple_,
    update,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.ext.asyncio import AsyncSession

from spendsense_operator.adapters.orm import (
    audit_log,
    consent_projection,
    persona_history,
    review_queue,
    user_signals,
)
from spendsense_operator.domain.model import (
    ERASED_TEXT,
    OPEN_STATUSES,
    AuditEntry,
    AuditFilter,
    QueuedItem,
    ReviewFilter,
    SortKey,
    Status,
)
from spendsense_operator.domain.users import PersonaRecord, WindowSignals, newer
from spendsense_operator.handlers.unit_of_work import AuditLog, PersonaProjection, Projection, ReviewQueue
from spendsense_shared.db import insert_all
from spendsense_shared.erasure import pseudonym
from spendsense_shared.messaging.catalog import OverrideText
from spendsense_shared.messaging.contracts import Alternative, CitableFact

_JSON_LISTS = {"facts", "trusted_names", "alternatives"}
_ITEM_COLUMNS = [c.name for c in review_queue.columns]
_PLAIN_COLUMNS = [name for name in _ITEM_COLUMNS if name not in _JSON_LISTS | {"override"}]


def _item(row: Any) -> QueuedItem:
    return QueuedItem(
        **{name: getattr(row, name) for name in _PLAIN_COLUMNS},
        facts=[CitableFact.model_validate(f) for f in row.facts],
        trusted_names=list(row.trusted_names),
        alternatives=[Alternative.model_validate(a) for a in row.alternatives],
        override=None if row.override is None else OverrideText.model_validate(row.override),
    )


def _row(item: QueuedItem) -> dict[str, Any]:
    return {
        **{name: getattr(item, name) for name in _PLAIN_COLUMNS},
        "facts": [f.model_dump(mode="json") for f in item.facts],
        "trusted_names": list(item.trusted_names),
        "alternatives": [a.model_dump(mode="json") for a in item.alternatives],
        "override": None if item.override is None else item.override.model_dump(mode="json"),
    }


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
        stmt = (
            insert_all(review_queue, [_row(i) for i in items])
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

    async def open_matching(self, where: ReviewFilter, limit: int) -> list[QueuedItem]:
        q = review_queue.c
        stmt = (
            select(review_queue)
            .where(*_conditions(where, with_status=False), q.status.in_(OPEN_STATUSES))
            .order_by(q.created_at, q.recommendation_id)
            .limit(limit)
            .with_for_update(of=review_queue)
        )
        return [_item(r) for r in await self.session.execute(stmt)]

    async def count_open_matching(self, where: ReviewFilter) -> int:
        q = review_queue.c
        stmt = select(func.count()).where(*_conditions(where, with_status=False), q.status.in_(OPEN_STATUSES))
        return int((await self.session.execute(stmt)).scalar_one())

    async def find(self, recommendation_id: str) -> QueuedItem | None:
        stmt = select(review_queue).where(review_queue.c.recommendation_id == recommendation_id)
        row = (await self.session.execute(stmt)).first()
        return None if row is None else _item(row)

    async def for_user(self, user_id: str, limit: int) -> list[QueuedItem]:
        q = review_queue.c
        stmt = (
            select(review_queue)
            .where(q.user_id == user_id)
            .order_by(q.created_at.desc(), q.recommendation_id.desc())
            .limit(limit)
        )
        return [_item(r) for r in await self.session.execute(stmt)]

    async def override(
        self, recommendation_id: str, text: OverrideText, operator_id: str, reason: str, at: datetime
    ) -> None:
        await self.session.execute(
            update(review_queue)
            .where(review_queue.c.recommendation_id == recommendation_id)
            .values(
                status="overridden",
                override=text.model_dump(mode="json"),
                decided_by=operator_id,
                decided_at=at,
                reason=reason,
            )
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
                    "before": e.before,
                    "after": e.after,
                }
                for e in entries
            ],
        )

    async def pseudonymize_user(self, user_id: str) -> int:
        def scrubbed(column: Any) -> Any:  # SQL NULL and JSON null stay as they are
            empty = func.coalesce(func.jsonb_typeof(column), "null") == "null"
            return case((empty, column), else_=cast(ERASED_TEXT, JSONB))

        a = audit_log.c
        result = await self.session.execute(
            update(audit_log)
            .where(a.user_id == user_id)
            .values(user_id=pseudonym(user_id), before=scrubbed(a.before), after=scrubbed(a.after))
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
                before=r.before,
                after=r.after,
            )
            for r in await self.session.execute(stmt)
        ]


def _record(row: Any) -> PersonaRecord:
    return PersonaRecord(
        user_id=row.user_id,
        window=row.window,
        persona=row.persona,
        matched=list(row.matched),
        rule_set_version=row.rule_set_version,
        as_of=row.as_of,
        upload_id=row.upload_id,
        reason=row.reason,
        assigned_at=row.assigned_at,
        event_id=row.event_id,
    )


_SIGNALS_UPDATED = ("signals", "as_of", "rule_set_version", "upload_id", "assigned_at")


def _columns(record: PersonaRecord | WindowSignals) -> dict[str, Any]:
    """A history or signals row: the record's fields are its table's columns, by name."""
    return {f.name: getattr(record, f.name) for f in dataclasses.fields(record)}


class SqlPersonaProjection(PersonaProjection):
    def __init__(self, session: AsyncSession):
        self.session = session

    async def record_many(self, projections: Sequence[Projection]) -> list[bool]:
        """Two statements for the whole batch, whatever its size (three per user took a third of the
        worker's CPU for an upload's batch): the history rows, each kept unless either key is recorded
        already (``uq_persona_history_event_window``, or ``uq_persona_history_assignment``:
        ``domain.users.assignment_key``), then the signals of the users whose rows were added."""
        history = [r for rows, _ in projections for r in rows]
        added: set[tuple[str, str]] = set()
        if history:
            inserted = await self.session.execute(
                insert_all(persona_history, [_columns(r) for r in history])
                .on_conflict_do_nothing()
                .returning(persona_history.c.event_id, persona_history.c.window)
            )
            added = {(event_id, window) for event_id, window in inserted}
        recorded = []
        for rows, _ in projections:  # a row added is the first claimant's (the same event twice: once)
            mine = {(r.event_id, r.window) for r in rows} & added
            added -= mine
            recorded.append(not rows or bool(mine))
        latest: dict[tuple[str, str], WindowSignals] = {}  # one row per key: an upsert updates a row once
        kept = [s for (_, signals), ok in zip(projections, recorded, strict=True) if ok for s in signals]
        for s in kept:
            if newer(s, latest.get((s.user_id, s.window))):
                latest[(s.user_id, s.window)] = s
        if latest:
            stmt = insert_all(user_signals, [_columns(s) for s in latest.values()])
            stored = user_signals.c
            await self.session.execute(
                stmt.on_conflict_do_update(
                    index_elements=[stored.user_id, stored.window],
                    set_={name: stmt.excluded[name] for name in _SIGNALS_UPDATED},
                    # only newer signals replace the stored ones (domain.users.newer)
                    where=tuple_(stmt.excluded.as_of, stmt.excluded.assigned_at)
                    >= tuple_(stored.as_of, stored.assigned_at),
                )
            )
        return recorded

    async def history(self, user_id: str, limit: int) -> list[PersonaRecord]:
        h = persona_history.c
        stmt = (
            select(persona_history)
            .where(h.user_id == user_id)
            .order_by(h.assigned_at.desc(), h.seq.desc())
            .limit(limit)
        )
        return [_record(r) for r in await self.session.execute(stmt)]

    async def signals(self, user_id: str) -> dict[str, WindowSignals]:
        rows = await self.session.execute(select(user_signals).where(user_signals.c.user_id == user_id))
        return {
            r.window: WindowSignals(
                user_id=r.user_id,
                window=r.window,
                signals=r.signals,
                as_of=r.as_of,
                rule_set_version=r.rule_set_version,
                upload_id=r.upload_id,
                assigned_at=r.assigned_at,
            )
            for r in rows
        }

    async def merge_user(self, source_user_id: str, target_user_id: str) -> None:
        if source_user_id == target_user_id:
            return
        # An assignment both accounts have (the same upload analyzed for each): the target's own stays, so
        # the history keeps one row per assignment key (domain.users.assignment_key).
        h, taken = persona_history.c, persona_history.alias("taken").c
        await self.session.execute(
            delete(persona_history).where(
                h.user_id == source_user_id,
                h.upload_id.is_not(None),
                exists().where(
                    taken.user_id == target_user_id,
                    taken.upload_id == h.upload_id,
                    taken.window == h.window,
                    taken.as_of == h.as_of,
                    taken.rule_set_version == h.rule_set_version,
                    taken.persona == h.persona,
                ),
            )
        )
        await self.session.execute(
            update(persona_history)
            .where(persona_history.c.user_id == source_user_id)
            .values(user_id=target_user_id)
        )
        source, target = user_signals.alias("source"), user_signals.alias("target")
        newer_source = exists().where(
            source.c.user_id == source_user_id,
            source.c.window == user_signals.c.window,
            tuple_(source.c.as_of, source.c.assigned_at)
            > tuple_(user_signals.c.as_of, user_signals.c.assigned_at),
        )
        # the target's window goes where the source's is newer; the source's goes where the target's stays
        await self.session.execute(
            delete(user_signals).where(user_signals.c.user_id == target_user_id, newer_source)
        )
        await self.session.execute(
            delete(user_signals).where(
                user_signals.c.user_id == source_user_id,
                exists().where(target.c.user_id == target_user_id, target.c.window == user_signals.c.window),
            )
        )
        await self.session.execute(
            update(user_signals)
            .where(user_signals.c.user_id == source_user_id)
            .values(user_id=target_user_id)
        )

    async def erase_user(self, user_id: str) -> int:
        history = await self.session.execute(
            delete(persona_history).where(persona_history.c.user_id == user_id)
        )
        signals = await self.session.execute(delete(user_signals).where(user_signals.c.user_id == user_id))
        return sum(int(getattr(r, "rowcount", 0) or 0) for r in (history, signals))
