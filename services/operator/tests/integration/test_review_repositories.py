"""The operator's SQL repositories on real PostgreSQL: the review queue (idempotent add, locks,
decisions, keyset pages in every sort, counts, merge) and the audit log (newest first, filters)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from spendsense_operator.adapters.unit_of_work import SqlOperatorUnitOfWork
from spendsense_operator.bootstrap import SERVICE
from spendsense_operator.domain.model import (
    AuditEntry,
    AuditFilter,
    QueuedItem,
    ReviewFilter,
    sort_position,
)
from spendsense_shared.testing.fakes import load_beside

support = load_beside(__file__, "review_support.py", "spendsense_operator_review_support")
T0 = support.T0


def queued(rid: str, user_id: str, hours: int, **changes: Any) -> QueuedItem:
    fields: dict[str, Any] = {
        "recommendation_id": rid,
        "user_id": user_id,
        "upload_id": "up1",
        "persona": "saver",
        "kind": "education",
        "title": "t",
        "body": "b",
        "rationale": "r",
        "disclosure": "d",
        "catalog_item_id": "item",
        "catalog_version": "catalog-v1",
        "rank": 1,
        "guardrails": {"tone": True, "grounding": True, "disclosure": True, "length": True},
        "generator": "template",
        "fell_back_to_template": False,
        "priority": 0,
        "created_at": T0 + timedelta(hours=hours),
    }
    return QueuedItem(**(fields | changes))


@pytest.fixture
async def uow(service_client):
    client = await service_client(SERVICE)
    return client.platform.database.uow_factory(SqlOperatorUnitOfWork)


async def test_the_queue_adds_once_decides_pages_counts_and_merges(uow):
    items = [
        queued("a", "u2", 0),
        queued("b", "u1", 1, priority=13, kind="offer"),
        queued("c", "u3", 2, persona="debtor"),
        queued("d", "u1", 3, priority=13),
    ]
    async with uow() as tx:
        for user in ("u1", "u2", "u3", "u9"):  # the queue shows only users whose consent is current
            await tx.consent.apply(user, f"c-{user}", "granted", T0)
        assert await tx.queue.add(items) == ["a", "b", "c", "d"]
        assert await tx.queue.add([queued("a", "u9", 9), queued("e", "u2", 4)]) == ["e"]
        await tx.commit()

    async with uow() as tx:
        await tx.queue.decide("c", "flagged", "op-1", "second look", T0)
        await tx.queue.decide("e", "rejected", "op-1", "no", T0)
        await tx.commit()

    async with uow() as tx:
        [a] = await tx.queue.get_many(["a", "missing"])
        assert a.user_id == "u2"  # the second add left it as it was
        [c] = await tx.queue.get_many(["c"])
        assert (c.status, c.flagged, c.decided_by, c.reason) == ("flagged", True, "op-1", "second look")
        assert [i.recommendation_id for i in await tx.queue.open_for_user("u2")] == ["a"]

        async def walk(sort: Any, where: ReviewFilter = ReviewFilter(), size: int = 2) -> list[str]:
            seen: list[str] = []
            after = None
            while True:
                page = await tx.queue.page(where, sort, size, after)
                seen += [i.recommendation_id for i in page]
                if len(page) < size:
                    return seen
                after = sort_position(page[-1], sort)

        assert await walk("date") == ["e", "d", "c", "b", "a"]
        assert await walk("priority") == ["d", "b", "e", "c", "a"]
        assert await walk("user") == ["b", "d", "a", "e", "c"]
        assert await walk("date", ReviewFilter(kind="offer")) == ["b"]
        assert await walk("date", ReviewFilter(persona="debtor")) == ["c"]
        assert await walk("date", ReviewFilter(flagged=True)) == ["c"]
        assert await walk("date", ReviewFilter(flagged=False, status="pending")) == ["d", "b", "a"]
        assert await tx.queue.counts(ReviewFilter(status="pending")) == {
            "pending": 3,
            "flagged": 1,
            "rejected": 1,
        }
        assert await tx.queue.counts(ReviewFilter(user_id="u1")) == {"pending": 2}

    async with uow() as tx:
        await tx.queue.merge_user("u1", "u2")
        await tx.commit()
    async with uow() as tx:
        assert [i.recommendation_id for i in await tx.queue.open_for_user("u2")] == ["a", "b", "d"]
        assert await tx.queue.open_for_user("u1") == []


async def test_the_audit_log_pages_newest_first_and_filters(uow):
    def entry(rid: str, user_id: str, operator_id: str) -> AuditEntry:
        return AuditEntry(operator_id, "approve", rid, user_id, "pending", "approved", None, T0)

    async with uow() as tx:
        await tx.audit.add([entry("r1", "u1", "op-1"), entry("r2", "u1", "op-2"), entry("r3", "u2", "op-1")])
        await tx.commit()
    async with uow() as tx:
        first = await tx.audit.page(AuditFilter(), 2, None)
        assert [e.recommendation_id for e in first] == ["r3", "r2"]
        assert first[0].at == T0
        rest = await tx.audit.page(AuditFilter(), 2, first[-1].seq)
        assert [e.recommendation_id for e in rest] == ["r1"]
        assert [e.recommendation_id for e in await tx.audit.page(AuditFilter(user_id="u1"), None, None)] == [
            "r2",
            "r1",
        ]
        by_op = await tx.audit.page(AuditFilter(operator_id="op-1", recommendation_id="r1"), None, None)
        assert [e.recommendation_id for e in by_op] == ["r1"]


async def test_a_rolled_back_decision_leaves_nothing(uow):
    async with uow() as tx:
        await tx.queue.add([queued("a", "u1", 0)])
        await tx.commit()
    async with uow() as tx:
        await tx.queue.decide("a", "approved", "op-1", None, T0)
        await tx.audit.add([AuditEntry("op-1", "approve", "a", "u1", "pending", "approved", None, T0)])
        # no commit
    async with uow() as tx:
        [a] = await tx.queue.get_many(["a"])
        assert a.status == "pending"
        assert await tx.audit.page(AuditFilter(), None, None) == []
