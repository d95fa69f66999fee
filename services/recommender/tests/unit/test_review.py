"""``recommendation.reviewed`` on the in-memory unit of work: what each decision makes visible, the text an
override puts in place (checked again here against the facts the trace recorded), what is refused, what
is announced (``recommendations.published``), and that every decision is chained onto the item's trace
with the per-user chain still valid."""

from __future__ import annotations

import copy
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any

import pytest

from spendsense_recommender.domain.commands import ApprovedRecommendations, ListTraces, RecordFeedback
from spendsense_recommender.domain.model import RecommendationNotFound, ReviewTarget, ShownText
from spendsense_recommender.domain.review import OVERRIDE_REFUSED, Override, Review, decide_review
from spendsense_recommender.domain.trace import verify_chains
from spendsense_recommender.domain.writer import TemplateWriter
from spendsense_recommender.handlers.queries import approved_recommendations, list_traces, record_feedback
from spendsense_recommender.handlers.recommend import generate_recommendations
from spendsense_shared.consent import project_consent
from spendsense_shared.messaging.catalog import (
    ConsentGranted,
    ConsentRevoked,
    OverrideText,
    RecommendationsPublished,
    new_event,
    parse_data,
)
from spendsense_shared.messaging.envelope import EventEnvelope
from spendsense_shared.testing.fakes import load_beside

fakes = load_beside(__file__, "fakes.py", "spendsense_recommender_unit_fakes")
reviewed, review = fakes.reviewed, fakes.review
USER = "u-review"


async def handle(handler: Any, event: EventEnvelope, uow: Any) -> None:
    async with uow:
        await handler(event, parse_data(event), uow)
        await uow.commit()


async def set_consent(uow: Any, granted: bool) -> None:
    at = datetime.now(UTC) - timedelta(minutes=30 if granted else 10)
    if granted:
        data: Any = ConsentGranted(
            user_id=USER, consent_id="c", policy_version="1", scopes=["a"], granted_at=at
        )
    else:
        data = ConsentRevoked(user_id=USER, consent_id="c", revoked_at=at)
    await handle(project_consent, new_event(data, user_id=USER).model_copy(update={"occurred_at": at}), uow)


@pytest.fixture
async def items(uow, data_bucket, real_users) -> dict[str, Any]:
    """USER's pending recommendations (high-utilization report: offers and education with alternatives),
    by kind: the first education item and the first offer."""
    await set_consent(uow, True)
    generate = partial(generate_recommendations, store=data_bucket, writer=TemplateWriter())
    await handle(
        generate,
        await fakes.assigned(data_bucket, real_users["users"]["high_utilization"][0], USER, "up1"),
        uow,
    )
    rows = sorted(uow.recommendations.rows.values(), key=lambda r: (r.kind, r.rank))
    return {
        "education": next(r for r in rows if r.kind == "education"),
        "offer": next(r for r in rows if r.kind == "offer"),
    }


def published(uow: Any) -> list[RecommendationsPublished]:
    return [parse_data(e) for e in uow.published if e.type == "recommendations.published"]


async def visible(uow: Any) -> dict[str, Any]:
    page = await approved_recommendations(ApprovedRecommendations(USER, limit=100), uow)
    return {r.id: r for r in page.items}


def actions(uow: Any, recommendation_id: str) -> list[dict[str, Any]]:
    return list(uow.recommendations.trace_of(recommendation_id)["operator_actions"])


async def chain_ok(uow: Any) -> bool:
    page = await list_traces(ListTraces(USER, limit=100), uow)
    return bool(page.chain["ok"]) and verify_chains(await uow.recommendations.chains(USER)).ok


def edited(row: Any, **changes: str) -> OverrideText:
    """An operator's edit of the item's own text (the figures kept)."""
    version = "catalog-v1"
    text = {
        "title": "A calmer look at your card",
        "body": row.body,
        "rationale": "Here is what we noticed. " + row.rationale,
        "disclosure": row.disclosure,
        "catalog_item_id": row.item_id,
        "catalog_version": version,
        "source": "edited",
    }
    return OverrideText(**{**text, **changes})


def alternative_of(uow: Any, row: Any, index: int = 0) -> OverrideText:
    """One of the alternatives the trace recorded for ``row``, as the operator sends it."""
    recorded = uow.recommendations.trace_of(row.id)["alternatives"][index]
    fields = ("catalog_item_id", "catalog_version", "title", "body", "rationale", "disclosure")
    return OverrideText(**{k: recorded[k] for k in fields}, source="catalog_item")


# -- approve, reject, flag ----------------------------------------------------------------------------


async def test_an_approval_makes_the_item_visible_records_it_and_announces_it(uow, items):
    row = items["education"]
    event = reviewed(row.id, USER, "approved", "op-7", reason="looks right")
    await review(uow, event)

    assert uow.recommendations.rows[row.id].status == "approved"
    assert set(await visible(uow)) == {row.id}
    [action] = actions(uow, row.id)
    assert (action["actor"], action["action"], action["reason"]) == ("op-7", "approved", "looks right")
    assert action["event_id"] == str(event.id)
    assert action["outcome"] == "applied"
    assert action["status"] == {"before": "pending_review", "after": "approved"}
    assert "policy" not in action
    assert await chain_ok(uow)
    [announced] = [e for e in uow.published if e.type == "recommendations.published"]
    assert announced.user_id == USER
    assert announced.causation_id == event.id
    assert announced.producer == "recommender"
    assert parse_data(announced) == RecommendationsPublished(user_id=USER, recommendation_ids=[row.id])


async def test_a_policy_approval_names_the_policy_in_the_trace(uow, items):
    row = items["offer"]
    await review(uow, reviewed(row.id, USER, "approved", "policy:low-risk", policy="low-risk"))
    [action] = actions(uow, row.id)
    assert (action["actor"], action["policy"]) == ("policy:low-risk", "low-risk")
    assert uow.recommendations.rows[row.id].status == "approved"
    assert [p.recommendation_ids for p in published(uow)] == [[row.id]]


@pytest.mark.parametrize("decision", ["rejected", "flagged"])
async def test_a_rejection_or_a_flag_hides_the_item_and_announces_nothing(uow, items, decision):
    row = items["education"]
    await review(uow, reviewed(row.id, USER, "approved"))
    await review(uow, reviewed(row.id, USER, decision, reason="not for this user"))
    assert uow.recommendations.rows[row.id].status == decision
    assert await visible(uow) == {}
    assert [a["status"] for a in actions(uow, row.id)] == [
        {"before": "pending_review", "after": "approved"},
        {"before": "approved", "after": decision},
    ]
    assert len(published(uow)) == 1  # only the approval
    with pytest.raises(RecommendationNotFound):
        await record_feedback(RecordFeedback(USER, row.id, "saved"), uow)
    assert await chain_ok(uow)


# -- overrides ----------------------------------------------------------------------------------------


async def test_an_edited_override_is_shown_in_place_of_the_text_with_before_and_after_in_the_trace(
    uow, items
):
    row = items["education"]
    override = edited(row)
    await review(uow, reviewed(row.id, USER, "overridden", "op-2", override=override, reason="softer"))

    stored = uow.recommendations.rows[row.id]
    assert stored.status == "overridden"
    assert (stored.title, stored.rationale, stored.body) == (override.title, override.rationale, row.body)
    shown = (await visible(uow))[row.id]
    assert (shown.title, shown.rationale, shown.status) == (override.title, override.rationale, "overridden")
    [action] = actions(uow, row.id)
    assert action["action"] == "overridden"
    assert action["override"]["source"] == "edited"
    assert action["override"]["before"]["rationale"] == row.rationale
    assert action["override"]["after"]["rationale"] == override.rationale
    assert action["override"]["guardrails"]["passed"] is True
    assert action["override"]["guardrails"]["checked_against"] == row.item_id
    trace = uow.recommendations.trace_of(row.id)
    assert trace["output"]["rationale"] == row.rationale  # the generated text stays in the sealed trace
    assert [p.recommendation_ids for p in published(uow)] == [[row.id]]
    assert await chain_ok(uow)


async def test_an_override_with_an_alternative_shows_that_catalog_item(uow, items):
    row = items["offer"]
    override = alternative_of(uow, row)
    recorded = uow.recommendations.trace_of(row.id)["alternatives"][0]
    await review(uow, reviewed(row.id, USER, "overridden", override=override))

    stored = uow.recommendations.rows[row.id]
    assert stored.status == "overridden"
    assert (stored.item_id, stored.title, stored.body) == (
        override.catalog_item_id,
        override.title,
        override.body,
    )
    assert stored.details == recorded["details"]  # the alternative's partner and link, not the old offer's
    assert stored.details["partner"] != row.details["partner"] or stored.details["url"] != row.details["url"]
    assert uow.recommendations.catalog_version_of[row.id] == override.catalog_version
    await record_feedback(RecordFeedback(USER, row.id, "dismissed"), uow)
    assert await uow.recommendations.dismissed_items(USER) == {override.catalog_item_id}  # what was shown


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        (
            {"rationale": "Your card could save you $9,999 a year if you act on it now, starting today."},
            "grounding",
        ),
        ({"title": "Stop wasting money on interest"}, "tone"),
        ({"disclosure": "Not advice."}, "disclosure"),
        ({"rationale": "Too short."}, "length"),
        (
            {"body": "You are irresponsible with credit, and this article explains why at some length."},
            "body_tone",
        ),
    ],
)
async def test_an_override_that_fails_the_check_again_is_refused_and_the_item_hidden(
    uow, items, change, reason
):
    row = items["education"]
    await review(uow, reviewed(row.id, USER, "approved"))
    await review(uow, reviewed(row.id, USER, "overridden", override=edited(row, **change)))

    stored = uow.recommendations.rows[row.id]
    assert stored.status == OVERRIDE_REFUSED
    assert (stored.title, stored.rationale, stored.body) == (row.title, row.rationale, row.body)  # not stored
    assert await visible(uow) == {}  # neither the refused text nor the one it was to replace
    action = actions(uow, row.id)[-1]
    assert action["outcome"] == "refused"
    assert action["status"] == {"before": "approved", "after": OVERRIDE_REFUSED}
    assert reason in action["override"]["guardrails"]["reasons"]
    assert action["override"]["guardrails"]["passed"] is False
    assert len(published(uow)) == 1  # the approval only
    assert await chain_ok(uow)

    await review(uow, reviewed(row.id, USER, "overridden", override=edited(row)))  # a valid one later
    assert uow.recommendations.rows[row.id].status == "overridden"
    assert len(published(uow)) == 2


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"catalog_item_id": "edu-not-offered-here"}, "catalog_item"),
        ({"catalog_version": "catalog-v0"}, "catalog_version"),
    ],
)
async def test_an_override_naming_another_catalog_item_or_version_is_refused(uow, items, change, reason):
    row = items["education"]
    await review(uow, reviewed(row.id, USER, "overridden", override=edited(row, **change)))
    assert uow.recommendations.rows[row.id].status == OVERRIDE_REFUSED
    [refusal] = actions(uow, row.id)[-1]["override"]["guardrails"]["reasons"]
    assert refusal.startswith(reason)
    assert published(uow) == []


async def test_an_edit_is_checked_against_the_facts_of_the_item_it_names(uow, items):
    """An alternative's rationale cites other facts: valid under its own name, refused under the item's."""
    row = items["offer"]
    other = alternative_of(uow, row)
    other_facts = {
        f["key"] for f in uow.recommendations.trace_of(row.id)["alternatives"][0]["citable"]["facts"]
    }
    own_facts = {f["key"] for f in uow.recommendations.trace_of(row.id)["citable"]["facts"]}
    assert other_facts - own_facts, "the alternative cites a figure the item's own text does not"
    misnamed = other.model_copy(update={"catalog_item_id": row.item_id, "source": "edited"})
    await review(uow, reviewed(row.id, USER, "overridden", override=misnamed))
    assert uow.recommendations.rows[row.id].status == OVERRIDE_REFUSED
    await review(
        uow, reviewed(row.id, USER, "overridden", override=other.model_copy(update={"source": "edited"}))
    )
    assert uow.recommendations.rows[row.id].status == "overridden"


async def test_overriding_a_visible_item_changes_its_text_without_announcing_it_again(uow, items):
    row = items["education"]
    await review(uow, reviewed(row.id, USER, "approved"))
    await review(uow, reviewed(row.id, USER, "overridden", override=edited(row)))
    assert (await visible(uow))[row.id].title == "A calmer look at your card"
    await review(uow, reviewed(row.id, USER, "approved"))  # approving the overridden text keeps it
    assert (await visible(uow))[row.id].status == "overridden"
    assert [a["outcome"] for a in actions(uow, row.id)] == ["applied", "applied", "unchanged"]
    assert len(published(uow)) == 1
    assert await chain_ok(uow)


# -- consent, idempotency, unknown items --------------------------------------------------------------


async def test_without_current_consent_a_review_makes_nothing_visible(uow, items):
    row, other = items["education"], items["offer"]
    await review(uow, reviewed(other.id, USER, "approved"))
    await set_consent(uow, False)

    await review(uow, reviewed(row.id, USER, "approved"))
    await review(uow, reviewed(row.id, USER, "overridden", override=edited(row)))
    assert uow.recommendations.rows[row.id].status == "pending_review"
    assert uow.recommendations.rows[row.id].title == row.title
    assert [(a["outcome"], a["not_applied"]) for a in actions(uow, row.id)] == [
        ("not_applied", "consent_required"),
        ("not_applied", "consent_required"),
    ]
    await review(uow, reviewed(other.id, USER, "rejected", reason="hide it"))  # hiding is still applied
    assert uow.recommendations.rows[other.id].status == "rejected"
    assert len(published(uow)) == 1  # the approval made while consent was current
    assert await chain_ok(uow)


async def test_a_review_applies_once_and_a_second_approval_announces_nothing(uow, items):
    row = items["education"]
    event = reviewed(row.id, USER, "approved")
    await review(uow, event)
    before = copy.deepcopy(uow.recommendations.trace_of(row.id))
    await review(uow, event)  # the same event again (past the inbox): nothing changes
    assert uow.recommendations.trace_of(row.id) == before

    await review(uow, reviewed(row.id, USER, "approved", "op-2"))  # another operator approves too
    assert [a["actor"] for a in actions(uow, row.id)] == ["op-1", "op-2"]
    assert actions(uow, row.id)[-1]["outcome"] == "unchanged"
    assert len(published(uow)) == 1
    assert await chain_ok(uow)

    await review(uow, reviewed(row.id, USER, "rejected", reason="r"))
    await review(uow, reviewed(row.id, USER, "approved", "op-3"))  # visible again: announced again
    assert [p.recommendation_ids for p in published(uow)] == [[row.id], [row.id]]


async def test_a_review_of_an_unknown_or_erased_recommendation_changes_nothing(uow, items):
    before = copy.deepcopy((uow.recommendations.rows, uow.recommendations.trace_rows))
    await review(uow, reviewed("rec_unknown", USER, "approved"))
    assert (uow.recommendations.rows, uow.recommendations.trace_rows) == before
    assert published(uow) == []


# -- the pure decision ------------------------------------------------------------------------------


def test_an_override_of_a_trace_from_before_facts_were_recorded_is_checked_against_recomputed_facts(
    uow, items
):
    row = items["education"]
    trace = {
        k: v for k, v in uow.recommendations.trace_of(row.id).items() if k not in ("citable", "alternatives")
    }
    shown = ShownText(
        row.item_id, "catalog-v1", row.title, row.body, row.rationale, row.disclosure, row.details
    )
    target = ReviewTarget(row.id, USER, "pending_review", shown, trace)
    at = datetime.now(UTC)

    def decide(text: OverrideText) -> str:
        outcome = decide_review(
            target,
            Review("e1", "overridden", "op", override=Override(**text.model_dump())),
            consented=True,
            at=at,
        )
        assert outcome is not None
        return outcome.status

    assert decide(edited(row)) == "overridden"
    assert decide(edited(row, rationale=row.rationale + " Save $9,999.")) == OVERRIDE_REFUSED
