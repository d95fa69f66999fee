"""The review queue's handlers on the in-memory unit of work and data bucket: filling the queue from
``recommendations.generated`` (inline or by claim check, only with current consent, idempotently),
deciding (approve, reject, flag: all or nothing, audited, announced), listing and the audit log."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any

import pytest

from spendsense_operator.domain.commands import Decide, ListAudit, ListReview
from spendsense_operator.domain.model import (
    AuditFilter,
    ConsentRequired,
    RecommendationsNotFound,
    ReviewFilter,
    csv_safe,
    priority_of,
)
from spendsense_operator.handlers.queue import enqueue_recommendations
from spendsense_operator.handlers.review import decide, list_audit, list_review
from spendsense_shared.messaging.catalog import (
    RecommendationsGenerated,
    new_event,
    parse_data,
)
from spendsense_shared.messaging.claim_check import ClaimCheckMismatch, check_in_many
from spendsense_shared.messaging.contracts import GuardrailResults, ReviewItem, ReviewItems
from spendsense_shared.messaging.envelope import EventEnvelope
from spendsense_shared.testing.fakes import load_beside

T0 = datetime(2026, 11, 1, tzinfo=UTC)


def item(rid: str, kind: str = "education", persona: str = "saver", **changes: Any) -> ReviewItem:
    fields: dict[str, Any] = {
        "id": rid,
        "kind": kind,
        "title": f"Title {rid}",
        "body": "A body long enough to read.",
        "rationale": "Because your numbers say so.",
        "disclosure": "This is educational content, not financial advice.",
        "persona": persona,
        "catalog_item_id": f"item-{rid}",
        "catalog_version": "catalog-v1",
        "rank": 1,
        "guardrails": GuardrailResults(tone=True, grounding=True, disclosure=True, length=True),
        "generator": "template",
        "fell_back_to_template": False,
    }
    fields.update(changes)
    return ReviewItem(**fields)


# the event builders the other unit tests use
support = load_beside(__file__, "support.py", "spendsense_operator_unit_support")
generated, consent = support.generated, support.consent


async def deliver(uow: Any, bucket: Any, event: EventEnvelope) -> None:
    async with uow:
        await partial(enqueue_recommendations, store=bucket)(event, parse_data(event), uow)
        await uow.commit()


async def queued(uow: Any, bucket: Any, user_id: str, *items: ReviewItem, at: datetime = T0) -> None:
    await consent(uow, user_id)
    await deliver(uow, bucket, generated(user_id, list(items), at=at))


# --- filling the queue ---------------------------------------------------------------------------


async def test_items_are_queued_pending_with_what_a_reviewer_needs_and_a_redelivery_changes_nothing(
    uow, data_bucket
):
    await consent(uow, "u1")
    failing = GuardrailResults(tone=False, grounding=True, disclosure=True, length=False)
    event = generated("u1", [item("r1"), item("r2", "offer", guardrails=failing, fell_back_to_template=True)])
    await deliver(uow, data_bucket, event)

    r1, r2 = uow.queue.items["r1"], uow.queue.items["r2"]
    assert (r1.status, r1.user_id, r1.upload_id, r1.catalog_item_id, r1.created_at) == (
        "pending",
        "u1",
        "up1",
        "item-r1",
        T0,
    )
    assert r2.guardrails == {"tone": False, "grounding": True, "disclosure": True, "length": False}
    assert not r2.guardrails_passed
    assert r2.fell_back_to_template
    assert r2.priority > r1.priority
    assert uow.published == []

    await deliver(uow, data_bucket, event)  # a redelivery (or the same items announced again)
    assert len(uow.queue.items) == 2


async def test_nothing_is_queued_without_current_consent(uow, data_bucket):
    await deliver(uow, data_bucket, generated("u1", [item("r1")]))
    await consent(uow, "u2", granted=False)
    await deliver(uow, data_bucket, generated("u2", [item("r2")]))
    assert uow.queue.items == {}


async def test_items_by_claim_check_are_redeemed_from_the_data_bucket(uow, data_bucket):
    await consent(uow, "u1")
    items = [item(f"r{n}") for n in range(3)]
    body = ReviewItems(items=items).model_dump_json().encode()
    [claim] = await check_in_many(data_bucket, [("recommender/users/u1/review/x.json", body)])
    await deliver(uow, data_bucket, generated("u1", items, items=None, items_claim=claim))
    assert sorted(uow.queue.items) == ["r0", "r1", "r2"]


async def test_a_claim_whose_content_changed_is_refused(uow, data_bucket):
    await consent(uow, "u1")
    body = ReviewItems(items=[item("r1")]).model_dump_json().encode()
    [claim] = await check_in_many(data_bucket, [("k.json", body)])
    data_bucket.objects["k.json"] = ReviewItems(items=[item("r9")]).model_dump_json().encode()
    with pytest.raises(ClaimCheckMismatch):
        await deliver(uow, data_bucket, generated("u1", [item("r1")], items=None, items_claim=claim))
    assert uow.queue.items == {}


async def test_an_announcement_without_items_queues_nothing_and_only_announced_ids_are_queued(
    uow, data_bucket
):
    await consent(uow, "u1")
    await deliver(uow, data_bucket, generated("u1", [item("r1")], items=None))
    assert uow.queue.items == {}
    event = RecommendationsGenerated(
        user_id="u1", recommendation_ids=["r1"], persona="saver", items=[item("r1"), item("stray")]
    )
    await deliver(uow, data_bucket, new_event(event, user_id="u1"))
    assert list(uow.queue.items) == ["r1"]


def test_the_event_refuses_items_both_inline_and_by_claim():
    claim: Any = {"bucket": "b", "key": "k", "sha256": "0" * 64, "size_bytes": 1}
    with pytest.raises(ValueError, match="exclusive"):
        RecommendationsGenerated(
            user_id="u1", recommendation_ids=["r1"], persona="saver", items=[item("r1")], items_claim=claim
        )


# --- decisions -----------------------------------------------------------------------------------


async def test_approving_by_ids_updates_the_queue_audits_and_announces_each(uow, data_bucket):
    await queued(uow, data_bucket, "u1", item("r1"), item("r2"), item("r3"))

    result = await decide(Decide("approved", "op-1", recommendation_ids=("r2", "r1")), uow)

    assert [i.recommendation_id for i in result.items] == ["r2", "r1"]
    assert {i.status for i in result.items} == {"approved"}
    assert uow.queue.items["r3"].status == "pending"
    assert uow.queue.items["r1"].decided_by == "op-1"
    assert [
        (e.recommendation_id, e.before_status, e.after_status, e.operator_id) for e in uow.audit.entries
    ] == [
        ("r2", "pending", "approved", "op-1"),
        ("r1", "pending", "approved", "op-1"),
    ]
    assert uow.published_types() == ["recommendation.reviewed"] * 2
    assert next(parse_data(e) for e in uow.published).model_dump() == {
        "recommendation_id": "r2",
        "user_id": "u1",
        "decision": "approved",
        "operator_id": "op-1",
        "reason": None,
        "override": None,
        "policy": None,
    }
    assert {e.user_id for e in uow.published} == {"u1"}


async def test_approving_a_users_open_items(uow, data_bucket):
    await queued(uow, data_bucket, "u1", item("r1"), item("r2"), item("r3"))
    await queued(uow, data_bucket, "u2", item("x1"))
    await decide(Decide("rejected", "op-1", recommendation_ids=("r3",), reason="off-topic"), uow)

    result = await decide(Decide("approved", "op-2", user_id="u1"), uow)

    assert [i.recommendation_id for i in result.items] == ["r1", "r2"]
    assert uow.queue.items["r3"].status == "rejected"  # decided already: not an open item
    assert uow.queue.items["x1"].status == "pending"


async def test_rejecting_records_the_reason_and_flagging_marks_for_a_second_review(uow, data_bucket):
    await queued(uow, data_bucket, "u1", item("r1"), item("r2"))
    await decide(Decide("rejected", "op-1", recommendation_ids=("r1",), reason="misleading"), uow)
    await decide(Decide("flagged", "op-1", recommendation_ids=("r2",), reason="check the APR"), uow)
    await decide(Decide("approved", "op-2", recommendation_ids=("r2",)), uow)

    assert (uow.queue.items["r1"].status, uow.queue.items["r1"].reason) == ("rejected", "misleading")
    assert (uow.queue.items["r2"].status, uow.queue.items["r2"].flagged) == ("approved", True)
    assert [(e.action, e.before_status, e.after_status, e.reason) for e in uow.audit.entries] == [
        ("reject", "pending", "rejected", "misleading"),
        ("flag", "pending", "flagged", "check the APR"),
        ("approve", "flagged", "approved", None),
    ]
    assert [parse_data(e).decision for e in uow.published] == ["rejected", "flagged", "approved"]  # type: ignore[attr-defined]


async def test_unknown_ids_are_named_and_nothing_changes(uow, data_bucket):
    await queued(uow, data_bucket, "u1", item("r1"))
    with pytest.raises(RecommendationsNotFound) as refused:
        await decide(Decide("approved", "op-1", recommendation_ids=("r1", "nope", "gone")), uow)
    assert refused.value.ids == ["nope", "gone"]
    assert uow.queue.items["r1"].status == "pending"
    assert uow.audit.entries == []
    assert uow.published == []


async def test_an_item_whose_user_revoked_consent_refuses_the_whole_decision(uow, data_bucket):
    await queued(uow, data_bucket, "u1", item("r1"))
    await queued(uow, data_bucket, "u2", item("r2"))
    await consent(uow, "u2", granted=False, hours=1)
    with pytest.raises(ConsentRequired) as refused:
        await decide(Decide("approved", "op-1", recommendation_ids=("r1", "r2")), uow)
    assert refused.value.user_ids == ["u2"]
    assert {i.status for i in uow.queue.items.values()} == {"pending"}
    assert uow.audit.entries == []
    assert uow.published == []
    with pytest.raises(ConsentRequired):
        await decide(Decide("approved", "op-1", user_id="u2"), uow)


# --- reading ------------------------------------------------------------------------------------


async def test_the_queue_filters_sorts_pages_and_counts(uow, data_bucket):
    failing = GuardrailResults(tone=False, grounding=True, disclosure=True, length=True)
    await queued(uow, data_bucket, "u2", item("a1"), item("a2", "offer"), at=T0)
    await queued(
        uow, data_bucket, "u1", item("b1", persona="debtor", guardrails=failing), at=T0 + timedelta(hours=1)
    )
    await queued(uow, data_bucket, "u3", item("c1"), at=T0 + timedelta(hours=2))
    await decide(Decide("flagged", "op-1", recommendation_ids=("c1",)), uow)

    async def ids(sort: Any = "date", limit: int = 10, **where: Any) -> list[str]:
        page = await list_review(ListReview(ReviewFilter(**where), sort, limit), uow)
        return [i.recommendation_id for i in page.items]

    assert await ids() == ["c1", "b1", "a2", "a1"]
    assert await ids("priority") == ["b1", "a2", "c1", "a1"]
    assert await ids("user") == ["b1", "a1", "a2", "c1"]
    assert await ids(kind="offer") == ["a2"]
    assert await ids(persona="debtor") == ["b1"]
    assert await ids(user_id="u2") == ["a2", "a1"]
    assert await ids(flagged=True) == ["c1"]
    assert await ids(status="pending") == ["b1", "a2", "a1"]

    seen: list[str] = []
    after = None
    while True:
        page = await list_review(ListReview(ReviewFilter(), "priority", 3, after), uow)
        seen += [i.recommendation_id for i in page.items]
        assert page.counts == {"pending": 3, "approved": 0, "rejected": 0, "flagged": 1, "overridden": 0}
        if page.next_after is None:
            break
        after = page.next_after
    assert seen == ["b1", "a2", "c1", "a1"]
    page = await list_review(ListReview(ReviewFilter(status="pending", user_id="u2"), "date", 1), uow)
    assert page.counts == {"pending": 2, "approved": 0, "rejected": 0, "flagged": 0, "overridden": 0}


async def test_the_audit_log_pages_newest_first_and_filters(uow, data_bucket):
    await queued(uow, data_bucket, "u1", item("r1"), item("r2"))
    await queued(uow, data_bucket, "u2", item("r3"))
    await decide(Decide("approved", "op-1", recommendation_ids=("r1", "r2")), uow)
    await decide(Decide("rejected", "op-2", recommendation_ids=("r3",), reason="no"), uow)

    first = await list_audit(ListAudit(AuditFilter(), 2), uow)
    assert [e.recommendation_id for e in first.items] == ["r3", "r2"]
    rest = await list_audit(ListAudit(AuditFilter(), 2, first.next_after), uow)
    assert [e.recommendation_id for e in rest.items] == ["r1"]
    assert rest.next_after is None
    assert [
        e.recommendation_id for e in (await list_audit(ListAudit(AuditFilter(user_id="u1"), None), uow)).items
    ] == [
        "r2",
        "r1",
    ]
    assert [
        e.operator_id for e in (await list_audit(ListAudit(AuditFilter(operator_id="op-2"), 5), uow)).items
    ] == ["op-2"]


def test_priority_weighs_failed_checks_then_a_fallback_then_offers():
    ok = {"tone": True, "grounding": True, "disclosure": True, "length": True}
    assert priority_of("education", ok, False) == 0
    assert priority_of("education", {**ok, "tone": False}, False) > priority_of("offer", ok, True)
    assert priority_of("education", ok, True) > priority_of("offer", ok, False) > 0


@pytest.mark.parametrize(
    ("value", "cell"),
    [
        ("=HYPERLINK(1)", "'=HYPERLINK(1)"),
        ("+1", "'+1"),
        ("-2", "'-2"),
        ("@SUM(A1)", "'@SUM(A1)"),
        ("\tx", "'\tx"),
        ("\rx", "'\rx"),
        ("plain = text", "plain = text"),
        (None, ""),
        (7, "7"),
    ],
)
def test_csv_cells_are_safe_against_formula_injection(value, cell):
    assert csv_safe(value) == cell


async def test_a_user_who_revokes_consent_disappears_from_the_queue_and_its_counts(uow, data_bucket):
    await queued(uow, data_bucket, "u1", item("r1"))
    await queued(uow, data_bucket, "u2", item("r2"))
    await consent(uow, "u1", granted=False, hours=1)
    everyone = ListReview(ReviewFilter(), "date", 50)
    page = await list_review(everyone, uow)
    assert [i.recommendation_id for i in page.items] == ["r2"]
    assert page.counts["pending"] == 1
    assert (await list_review(ListReview(ReviewFilter(user_id="u1"), "date", 50), uow)).items == []
    await consent(uow, "u1", granted=True, hours=2)  # granted again: back in the queue
    assert {i.recommendation_id for i in (await list_review(everyone, uow)).items} == {"r1", "r2"}
