"""The operator's SQL repositories on real PostgreSQL: the review queue (idempotent add, locks,
decisions, keyset pages in every sort, counts, merge, facts/alternatives/override round trip, bulk
selection), the audit log (newest first, filters, before/after text) and the persona projection
(history once per event and once per assignment, newer signals win, merge, erasure)."""

from __future__ import annotations

import asyncio
import dataclasses
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
from spendsense_operator.domain.users import PersonaRecord, WindowSignals
from spendsense_shared.erasure import pseudonym
from spendsense_shared.messaging.catalog import OverrideText
from spendsense_shared.messaging.contracts import Alternative, CitableFact
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


# --- overrides, bulk selection, the user detail's reads ------------------------------------------------

FACT = CitableFact(key="card.utilization", unit="percent", value=68.0, display="68 %")
ALTERNATIVE = Alternative(
    catalog_item_id="edu-autopay",
    catalog_version="catalog-v1",
    title="Autopay basics",
    body="How autopay keeps payments on time.",
    rationale="Your card is at 68 % utilization.",
    disclosure="d",
)


async def test_an_items_facts_alternatives_and_override_round_trip(uow):
    item = queued("a", "u1", 0, facts=[FACT], trusted_names=["Title 1"], alternatives=[ALTERNATIVE])
    async with uow() as tx:
        await tx.queue.add([item, queued("b", "u1", 1)])
        await tx.commit()
    async with uow() as tx:
        assert await tx.queue.find("a") == item
        assert await tx.queue.find("missing") is None
        [b] = await tx.queue.get_many(["b"])
        assert (b.facts, b.trusted_names, b.alternatives, b.override) == ([], [], [], None)
        text = OverrideText(**ALTERNATIVE.model_dump(), source="catalog_item")
        await tx.queue.override("a", text, "op-1", "a better fit", T0)
        entry = AuditEntry("op-1", "override", "a", "u1", "pending", "overridden", "a better fit", T0)
        before, after = item.shown_text(), text.model_dump()
        await tx.audit.add([dataclasses.replace(entry, before=before, after=after)])
        await tx.commit()
    async with uow() as tx:
        a = await tx.queue.find("a")
        assert a is not None
        assert (a.status, a.override, a.decided_by, a.reason, a.title) == (
            "overridden",
            text,
            "op-1",
            "a better fit",
            "t",  # the original stays
        )
        [entry] = await tx.audit.page(AuditFilter(), None, None)
        assert entry.before == item.shown_text()
        assert entry.after == text.model_dump()
        assert await tx.queue.counts(ReviewFilter()) == {}  # u1 has no consent: staff see nothing
        assert [i.recommendation_id for i in await tx.queue.for_user("u1", 10)] == ["b", "a"]
        assert [i.recommendation_id for i in await tx.queue.for_user("u1", 1)] == ["b"]
        await tx.audit.add([AuditEntry("op-1", "approve", "b", "u1", "pending", "approved", None, T0)])
        assert await tx.audit.pseudonymize_user("u1") == 2
        await tx.commit()
    async with uow() as tx:  # an erasure: the override's texts cite the user's figures, so they go too
        erased = {
            e.recommendation_id: (e.user_id, e.before, e.after)
            for e in await tx.audit.page(AuditFilter(), None, None)
        }
        assert erased == {
            "a": (pseudonym("u1"), {"erased": True}, {"erased": True}),
            "b": (pseudonym("u1"), None, None),
        }


async def test_open_items_match_by_persona_and_kind_among_consented_users_oldest_first(uow):
    async with uow() as tx:
        for user in ("u1", "u2"):
            await tx.consent.apply(user, f"c-{user}", "granted", T0)
        await tx.queue.add(
            [
                queued("a", "u1", 2),
                queued("b", "u2", 1, kind="offer"),
                queued("c", "u2", 0),
                queued("d", "u1", 3, persona="debtor"),
                queued("e", "u1", 4),
                queued("f", "u3", 0),  # no consent
            ]
        )
        await tx.queue.decide("e", "approved", "op-1", None, T0)
        await tx.queue.decide("a", "flagged", "op-1", None, T0)
        await tx.commit()
    async with uow() as tx:
        saver = ReviewFilter(persona="saver")
        assert [i.recommendation_id for i in await tx.queue.open_matching(saver, 10)] == ["c", "b", "a"]
        assert [i.recommendation_id for i in await tx.queue.open_matching(saver, 2)] == ["c", "b"]
        assert await tx.queue.count_open_matching(saver) == 3
        both = ReviewFilter(persona="saver", kind="education")
        assert [i.recommendation_id for i in await tx.queue.open_matching(both, 10)] == ["c", "a"]
        assert await tx.queue.count_open_matching(ReviewFilter(kind="offer")) == 1


def record(
    user_id: str, window: str, hours: int, event: str, persona: str = "saver", upload: str | None = "up1"
) -> PersonaRecord:
    at = T0 + timedelta(hours=hours)
    reason = "upload" if upload else "rescore"
    return PersonaRecord(
        user_id, window, persona, [persona], "personas-v1", at.date(), upload, reason, at, event
    )


def signals(user_id: str, window: str, hours: int, days_back: int = 0, tag: str = "") -> WindowSignals:
    at = T0 + timedelta(hours=hours)
    as_of = (T0 - timedelta(days=days_back)).date()
    return WindowSignals(user_id, window, {"tag": tag or user_id}, as_of, "personas-v1", "up1", at)


async def test_the_persona_projection_records_once_keeps_the_newer_signals_merges_and_erases(uow):
    async with uow() as tx:
        await tx.personas.record(
            [record("u1", "30d", 1, "e1"), record("u1", "180d", 1, "e1")],
            [signals("u1", "30d", 1, tag="first"), signals("u1", "180d", 1, tag="first")],
        )
        await tx.personas.record([record("u1", "30d", 1, "e1")], [])  # the same event again
        await tx.personas.record(
            [record("u1", "30d", 2, "e2", "debtor")],
            [signals("u1", "30d", 2, tag="second"), signals("u1", "180d", 0, days_back=30, tag="older")],
        )
        await tx.commit()
    async with uow() as tx:
        history = await tx.personas.history("u1", 10)
        assert [(r.window, r.event_id, r.persona) for r in history] == [
            ("30d", "e2", "debtor"),
            ("180d", "e1", "saver"),
            ("30d", "e1", "saver"),
        ]
        assert [r.event_id for r in await tx.personas.history("u1", 1)] == ["e2"]
        latest = await tx.personas.signals("u1")
        assert {w: s.signals["tag"] for w, s in latest.items()} == {"30d": "second", "180d": "first"}
        assert latest["30d"].assigned_at == T0 + timedelta(hours=2)

    async with uow() as tx:  # the target's 30d is older than the source's, its 180d newer
        await tx.personas.record(
            [record("u2", "30d", 5, "e5", upload="up2")],
            [signals("u2", "30d", 0, tag="target"), signals("u2", "180d", 9, tag="target")],
        )
        await tx.personas.merge_user("u1", "u2")
        await tx.commit()
    async with uow() as tx:
        assert await tx.personas.history("u1", 10) == []
        assert await tx.personas.signals("u1") == {}
        assert [r.event_id for r in await tx.personas.history("u2", 10)] == ["e5", "e2", "e1", "e1"]
        merged = await tx.personas.signals("u2")
        assert {w: (s.user_id, s.signals["tag"]) for w, s in merged.items()} == {
            "30d": ("u2", "second"),
            "180d": ("u2", "target"),
        }
        assert await tx.personas.erase_user("u2") == 6
        await tx.commit()
    async with uow() as tx:
        assert await tx.personas.history("u2", 10) == []
        assert await tx.personas.signals("u2") == {}


async def test_the_same_assignment_in_another_event_is_recorded_once(uow):
    """features publishes a user's stored analysis of an upload again (the profile's reconciler announced
    the upload again): another event, the same assignment. Neither its history nor its signals are
    recorded again; a new assignment (another upload, persona or re-score) still is."""
    first = [record("u1", "30d", 1, "e1"), record("u1", "180d", 1, "e1")]
    async with uow() as tx:
        assert await tx.personas.record(first, [signals("u1", "30d", 1, tag="first")])
        await tx.commit()
    again = [
        dataclasses.replace(r, event_id="e2", assigned_at=r.assigned_at + timedelta(hours=3)) for r in first
    ]
    async with uow() as tx:
        assert not await tx.personas.record(again, [signals("u1", "30d", 4, tag="again")])
        await tx.commit()
    async with uow() as tx:
        assert [(r.window, r.event_id) for r in await tx.personas.history("u1", 10)] == [
            ("180d", "e1"),
            ("30d", "e1"),
        ]
        latest = await tx.personas.signals("u1")
        assert (latest["30d"].signals["tag"], latest["30d"].assigned_at) == ("first", T0 + timedelta(hours=1))

    async with uow() as tx:  # genuinely new assignments of the same user and window are all recorded
        assert await tx.personas.record([record("u1", "30d", 2, "e3", upload="up2")], [])
        assert await tx.personas.record([record("u1", "30d", 2, "e4", persona="debtor")], [])
        assert await tx.personas.record([record("u1", "30d", 2, "e5", upload=None)], [])
        assert await tx.personas.record([record("u1", "30d", 2, "e6", upload=None)], [])  # another re-score
        await tx.commit()
    async with uow() as tx:
        history = await tx.personas.history("u1", 10)
        assert sorted(r.event_id for r in history if r.window == "30d") == ["e1", "e3", "e4", "e5", "e6"]


def _batch(p: str) -> list[tuple[list[PersonaRecord], list[WindowSignals]]]:
    """A batch naming users and events with the prefix ``p``: a new user; one whose event was recorded
    before; one twice, the newer assignment second; one twice, the newer first; one twice in the same
    event; signals without history."""
    return [
        (
            [record(f"{p}1", "30d", 1, f"{p}e1"), record(f"{p}1", "180d", 1, f"{p}e1")],
            [signals(f"{p}1", "30d", 1, tag="new"), signals(f"{p}1", "180d", 1, tag="new")],
        ),
        ([record(f"{p}2", "30d", 1, f"{p}e0")], [signals(f"{p}2", "30d", 3, tag="again")]),
        ([record(f"{p}3", "30d", 1, f"{p}e3")], [signals(f"{p}3", "30d", 1, tag="older")]),
        ([record(f"{p}3", "30d", 5, f"{p}e4", "debtor")], [signals(f"{p}3", "30d", 5, tag="newer")]),
        ([record(f"{p}4", "30d", 5, f"{p}e5")], [signals(f"{p}4", "30d", 5, tag="newer")]),
        ([record(f"{p}4", "30d", 1, f"{p}e6", "debtor")], [signals(f"{p}4", "30d", 1, tag="older")]),
        ([record(f"{p}5", "30d", 1, f"{p}e7")], [signals(f"{p}5", "30d", 1, tag="first")]),
        ([record(f"{p}5", "30d", 1, f"{p}e7")], [signals(f"{p}5", "30d", 2, tag="second")]),
        ([], [signals(f"{p}6", "180d", 1, tag="alone")]),
    ]


async def test_a_batch_is_recorded_as_its_users_one_after_another(uow):
    """``record_many`` (two statements for a batch) against ``record`` of each in turn, on the same
    batch under two prefixes: the same answers, history and latest signals, user by user."""
    for p in ("many", "each"):
        async with uow() as tx:
            await tx.personas.record(
                [record(f"{p}2", "30d", 1, f"{p}e0")], [signals(f"{p}2", "30d", 1, tag="kept")]
            )
            await tx.commit()
    async with uow() as tx:
        answers = {"many": await tx.personas.record_many(_batch("many"))}
        answers["each"] = [await tx.personas.record(h, s) for h, s in _batch("each")]
        await tx.commit()
    assert answers["many"] == answers["each"] == [True, False, True, True, True, True, True, False, True]
    seen: dict[str, list[Any]] = {}
    async with uow() as tx:
        for p in ("many", "each"):
            for n in range(1, 7):
                history = await tx.personas.history(f"{p}{n}", 10)
                latest = await tx.personas.signals(f"{p}{n}")
                seen.setdefault(p, []).append(
                    (
                        [(r.window, r.event_id.removeprefix(p), r.persona) for r in history],
                        {w: s.signals["tag"] for w, s in latest.items()},
                    )
                )
    assert seen["many"] == seen["each"]
    assert [tags for _, tags in seen["many"]] == [
        {"30d": "new", "180d": "new"},
        {"30d": "kept"},
        {"30d": "newer"},
        {"30d": "newer"},
        {"30d": "first"},
        {"180d": "alone"},
    ]


async def test_two_events_of_one_assignment_at_the_same_time_record_it_once(uow):
    """The replayed event and the one published again are handled at the same time by two consumers:
    the database's unique key, not a read before the write, keeps one."""

    async def project(event: str) -> bool:
        async with uow() as tx:
            added = await tx.personas.record([record("u1", "30d", 1, event)], [signals("u1", "30d", 1)])
            await asyncio.sleep(0.2)  # both inserts in flight before either commits
            await tx.commit()
            return added

    results = await asyncio.gather(project("e1"), project("e2"))
    assert sorted(results) == [False, True]
    async with uow() as tx:
        assert len(await tx.personas.history("u1", 10)) == 1


async def test_a_merge_keeps_one_row_of_an_assignment_both_accounts_have(uow):
    async with uow() as tx:
        await tx.personas.record([record("old", "30d", 1, "e1"), record("old", "180d", 1, "e1")], [])
        await tx.personas.record([record("new", "30d", 1, "e2")], [])
        await tx.personas.merge_user("old", "new")
        await tx.commit()
    async with uow() as tx:
        assert await tx.personas.history("old", 10) == []
        assert sorted((r.window, r.event_id) for r in await tx.personas.history("new", 10)) == [
            ("180d", "e1"),
            ("30d", "e2"),
        ]
