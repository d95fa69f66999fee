"""The operator's in-memory unit of work (review queue, audit log, persona projection, consent
projection) and dead-letter queues, for handler unit tests. The SQL repositories are tested against PostgreSQL in
``integration``."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from spendsense_operator.domain.dead_letters import DeadLetterMessage, QueueRef, QueueUnavailable
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
from spendsense_operator.domain.users import PersonaRecord, WindowSignals, assignment_key, newer
from spendsense_operator.handlers.dead_letters import DeadLetterQueues
from spendsense_operator.handlers.unit_of_work import (
    AuditLog,
    OperatorUnitOfWork,
    PersonaProjection,
    Projection,
    ReviewQueue,
)
from spendsense_shared.erasure import pseudonym
from spendsense_shared.messaging.catalog import OverrideText
from spendsense_shared.messaging.envelope import EventEnvelope
from spendsense_shared.testing.fakes import FakeUnitOfWork, InMemoryConsentProjection


def _matches(item: QueuedItem, where: ReviewFilter, with_status: bool = True) -> bool:
    return (
        (where.user_id is None or item.user_id == where.user_id)
        and (where.persona is None or item.persona == where.persona)
        and (where.kind is None or item.kind == where.kind)
        and (where.flagged is None or item.flagged == where.flagged)
        and (not with_status or where.status is None or item.status == where.status)
    )


def _key(item: QueuedItem, sort: SortKey) -> tuple[Any, ...]:
    if sort == "priority":
        return (item.priority, item.created_at, item.recommendation_id)
    if sort == "user":
        return (item.user_id, item.created_at, item.recommendation_id)
    return (item.created_at, item.recommendation_id)


def _after_key(after: dict[str, Any], sort: SortKey) -> tuple[Any, ...]:
    t = datetime.fromisoformat(after["t"])
    if sort == "priority":
        return (after["p"], t, after["id"])
    if sort == "user":
        return (after["u"], t, after["id"])
    return (t, after["id"])


class InMemoryReviewQueue(ReviewQueue):
    def __init__(self, consent: InMemoryConsentProjection) -> None:
        self.items: dict[str, QueuedItem] = {}
        self.consent = consent

    def _visible(self, item: QueuedItem) -> bool:
        row = self.consent.rows.get(item.user_id)
        return row is not None and row[1] == "granted"

    async def add(self, items: list[QueuedItem]) -> list[str]:
        added = []
        for item in items:
            if item.recommendation_id not in self.items:
                self.items[item.recommendation_id] = item
                added.append(item.recommendation_id)
        return added

    async def get_many(self, recommendation_ids: list[str]) -> list[QueuedItem]:
        return [self.items[i] for i in sorted(set(recommendation_ids)) if i in self.items]

    async def open_for_user(self, user_id: str) -> list[QueuedItem]:
        return sorted(
            (i for i in self.items.values() if i.user_id == user_id and i.status in OPEN_STATUSES),
            key=lambda i: i.recommendation_id,
        )

    async def open_matching(self, where: ReviewFilter, limit: int) -> list[QueuedItem]:
        return sorted(
            (i for i in self.items.values() if self._open_match(i, where)),
            key=lambda i: (i.created_at, i.recommendation_id),
        )[:limit]

    async def count_open_matching(self, where: ReviewFilter) -> int:
        return sum(1 for i in self.items.values() if self._open_match(i, where))

    def _open_match(self, item: QueuedItem, where: ReviewFilter) -> bool:
        return (
            _matches(item, where, with_status=False) and self._visible(item) and item.status in OPEN_STATUSES
        )

    async def find(self, recommendation_id: str) -> QueuedItem | None:
        return self.items.get(recommendation_id)

    async def for_user(self, user_id: str, limit: int) -> list[QueuedItem]:
        mine = [i for i in self.items.values() if i.user_id == user_id]
        return sorted(mine, key=lambda i: (i.created_at, i.recommendation_id), reverse=True)[:limit]

    async def override(
        self, recommendation_id: str, text: OverrideText, operator_id: str, reason: str, at: datetime
    ) -> None:
        self.items[recommendation_id] = dataclasses.replace(
            self.items[recommendation_id],
            status="overridden",
            override=text,
            decided_by=operator_id,
            decided_at=at,
            reason=reason,
        )

    async def decide(
        self, recommendation_id: str, status: Status, operator_id: str, reason: str | None, at: datetime
    ) -> None:
        item = self.items[recommendation_id]
        self.items[recommendation_id] = dataclasses.replace(
            item,
            status=status,
            decided_by=operator_id,
            decided_at=at,
            reason=reason,
            flagged=item.flagged or status == "flagged",
        )

    async def page(
        self, where: ReviewFilter, sort: SortKey, limit: int, after: dict[str, Any] | None
    ) -> list[QueuedItem]:
        ascending = sort == "user"
        found = [i for i in self.items.values() if _matches(i, where) and self._visible(i)]
        if after is not None:
            bound = _after_key(after, sort)
            found = [i for i in found if (_key(i, sort) > bound if ascending else _key(i, sort) < bound)]
        found.sort(key=lambda i: _key(i, sort), reverse=not ascending)
        return found[:limit]

    async def counts(self, where: ReviewFilter) -> dict[str, int]:
        counts: dict[str, int] = {}
        for item in self.items.values():
            if _matches(item, where, with_status=False) and self._visible(item):
                counts[item.status] = counts.get(item.status, 0) + 1
        return counts

    async def merge_user(self, source_user_id: str, target_user_id: str) -> None:
        for rid, item in list(self.items.items()):
            if item.user_id == source_user_id:
                self.items[rid] = dataclasses.replace(item, user_id=target_user_id)

    async def erase_user(self, user_id: str) -> int:
        mine = [rid for rid, item in self.items.items() if item.user_id == user_id]
        for rid in mine:
            del self.items[rid]
        return len(mine)


class InMemoryAuditLog(AuditLog):
    def __init__(self) -> None:
        self.entries: list[AuditEntry] = []

    async def add(self, entries: list[AuditEntry]) -> None:
        for entry in entries:
            self.entries.append(dataclasses.replace(entry, seq=len(self.entries) + 1))

    async def pseudonymize_user(self, user_id: str) -> int:
        changed = 0
        for i, entry in enumerate(self.entries):
            if entry.user_id == user_id:
                self.entries[i] = dataclasses.replace(
                    entry,
                    user_id=pseudonym(user_id),
                    before=None if entry.before is None else ERASED_TEXT,
                    after=None if entry.after is None else ERASED_TEXT,
                )
                changed += 1
        return changed

    async def page(self, where: AuditFilter, limit: int | None, after: int | None) -> list[AuditEntry]:
        found = [
            e
            for e in reversed(self.entries)
            if (where.operator_id is None or e.operator_id == where.operator_id)
            and (where.user_id is None or e.user_id == where.user_id)
            and (where.recommendation_id is None or e.recommendation_id == where.recommendation_id)
            and (after is None or (e.seq or 0) < after)
        ]
        return found if limit is None else found[:limit]


class InMemoryPersonaProjection(PersonaProjection):
    def __init__(self) -> None:
        self.rows: list[PersonaRecord] = []  # in the order recorded
        self.latest: dict[tuple[str, str], WindowSignals] = {}  # by (user, window)

    async def record_many(self, projections: Sequence[Projection]) -> list[bool]:
        return [self._record(history, signals) for history, signals in projections]

    def _record(self, history: list[PersonaRecord], signals: list[WindowSignals]) -> bool:
        seen = {(r.event_id, r.window) for r in self.rows}
        assigned = {assignment_key(r) for r in self.rows} - {None}
        new = [r for r in history if (r.event_id, r.window) not in seen and assignment_key(r) not in assigned]
        self.rows += new
        if history and not new:
            return False
        for s in signals:
            if newer(s, self.latest.get((s.user_id, s.window))):
                self.latest[(s.user_id, s.window)] = s
        return True

    async def history(self, user_id: str, limit: int) -> list[PersonaRecord]:
        mine = [(n, r) for n, r in enumerate(self.rows) if r.user_id == user_id]
        mine.sort(key=lambda nr: (nr[1].assigned_at, nr[0]), reverse=True)
        return [r for _, r in mine][:limit]

    async def signals(self, user_id: str) -> dict[str, WindowSignals]:
        return {w: s for (u, w), s in self.latest.items() if u == user_id}

    async def merge_user(self, source_user_id: str, target_user_id: str) -> None:
        if source_user_id == target_user_id:
            return
        targets = {assignment_key(r) for r in self.rows if r.user_id == target_user_id} - {None}
        self.rows = [
            dataclasses.replace(r, user_id=target_user_id) if r.user_id == source_user_id else r
            for r in self.rows
            if r.user_id != source_user_id
            or assignment_key(dataclasses.replace(r, user_id=target_user_id)) not in targets
        ]
        for (user_id, window), s in list(self.latest.items()):
            if user_id != source_user_id:
                continue
            del self.latest[(user_id, window)]
            moved = dataclasses.replace(s, user_id=target_user_id)
            if newer(moved, self.latest.get((target_user_id, window))):
                self.latest[(target_user_id, window)] = moved

    async def erase_user(self, user_id: str) -> int:
        before = len(self.rows) + len(self.latest)
        self.rows = [r for r in self.rows if r.user_id != user_id]
        self.latest = {k: s for k, s in self.latest.items() if k[0] != user_id}
        return before - len(self.rows) - len(self.latest)


class FakeOperatorUnitOfWork(FakeUnitOfWork, OperatorUnitOfWork):
    """Transactional like the real one: a rolled-back unit of work leaves the queue, the log and the
    persona projection as they were."""

    def __init__(self) -> None:
        super().__init__()
        self.consent = InMemoryConsentProjection()
        self.queue = InMemoryReviewQueue(self.consent)
        self.audit = InMemoryAuditLog()
        self.personas = InMemoryPersonaProjection()
        self._saved = self._state()

    def _state(self) -> tuple[Any, ...]:
        return (
            dict(self.queue.items),
            list(self.audit.entries),
            list(self.personas.rows),
            dict(self.personas.latest),
        )

    async def _begin(self) -> None:
        self._saved = self._state()

    async def _commit(self, events: list[EventEnvelope]) -> None:
        await super()._commit(events)
        self._saved = self._state()

    async def _rollback(self) -> None:
        items, entries, rows, latest = self._saved
        self.queue.items, self.audit.entries = dict(items), list(entries)
        self.personas.rows, self.personas.latest = list(rows), dict(latest)


class InMemoryDeadLetterQueues(DeadLetterQueues):
    """Each service's DLQ and work queue as lists (oldest first); ``missing`` services have no queues."""

    def __init__(self) -> None:
        self.dlqs: dict[str, list[DeadLetterMessage]] = {}
        self.queues: dict[str, list[DeadLetterMessage]] = {}
        self.missing: set[str] = set()
        self.peeks: list[tuple[str, int]] = []

    def _dlq(self, queue: QueueRef) -> list[DeadLetterMessage]:
        if queue.service in self.missing:
            raise QueueUnavailable(queue.service, "not provisioned")
        return self.dlqs.setdefault(queue.service, [])

    async def depth(self, queue: QueueRef) -> int:
        return len(self._dlq(queue))

    async def peek(self, queue: QueueRef, limit: int) -> list[DeadLetterMessage]:
        self.peeks.append((queue.service, limit))
        return list(self._dlq(queue)[:limit])

    async def redrive(self, queue: QueueRef, max_messages: int) -> int:
        dlq = self._dlq(queue)
        moving, dlq[:] = dlq[:max_messages], dlq[max_messages:]
        self.queues.setdefault(queue.service, []).extend(moving)
        return len(moving)
