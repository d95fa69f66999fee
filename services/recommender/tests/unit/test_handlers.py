"""Every use case of the recommender against the in-memory unit of work and data bucket (milliseconds,
no servers): the SQL repository and the API are tested against PostgreSQL in ``integration``."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta
from functools import partial
from types import SimpleNamespace
from typing import Any

import pytest

from spendsense_recommender.domain.commands import (
    ApprovedRecommendations,
    CheckTrace,
    ListTraces,
    RecordFeedback,
)
from spendsense_recommender.domain.eligibility import UserFacts
from spendsense_recommender.domain.model import RecommendationNotFound
from spendsense_recommender.domain.recommend import plan
from spendsense_recommender.domain.snapshot import parse_report, snapshot_of
from spendsense_recommender.domain.writer import TemplateWriter
from spendsense_recommender.handlers import recommend
from spendsense_recommender.handlers.queries import (
    approved_recommendations,
    check_trace,
    list_traces,
    record_feedback,
)
from spendsense_recommender.handlers.recommend import apply_review, generate_recommendations
from spendsense_recommender.settings import RecommenderSettings
from spendsense_shared.consent import project_consent
from spendsense_shared.guardrails import check_text, citable, from_citable
from spendsense_shared.messaging.catalog import (
    ConsentGranted,
    PersonaAssigned,
    RecommendationReviewed,
    RecommendationsBatchGenerated,
    RecommendationsGenerated,
    new_event,
    parse_data,
)
from spendsense_shared.messaging.claim_check import ClaimCheckMismatch, check_in_many, redeem
from spendsense_shared.messaging.contracts import AnalysisReport, PersonaDetails, ReviewItem, ReviewItems
from spendsense_shared.messaging.envelope import EventEnvelope
from spendsense_shared.testing.fakes import load_beside

fakes = load_beside(__file__, "fakes.py", "spendsense_recommender_unit_fakes")


def entry(real_users: Any, persona: str = "high_utilization", index: int = 0) -> dict[str, Any]:
    return dict(real_users["users"][persona][index])


async def persona_assigned(bucket: Any, entry: dict[str, Any], upload_id: str = "up1") -> EventEnvelope:
    """The event as the features service publishes it: its details checked into the data bucket."""
    report = AnalysisReport.model_validate(entry["report"])
    body = PersonaDetails(report=report, accounts=entry["accounts"]).model_dump_json(by_alias=True).encode()
    [claim] = await check_in_many(bucket, [(f"features/users/{report.user_id}/analysis/x.json", body)])
    assert report.as_of is not None
    data = PersonaAssigned(
        user_id=report.user_id,
        upload_id=upload_id,
        as_of=report.as_of,
        rule_set_version="personas-v1",
        personas={w: r.persona.primary or "general_wellness" for w, r in report.windows.items()},
        details=claim,
    )
    return new_event(data, user_id=report.user_id)


async def grant(uow: Any, user_id: str) -> None:
    at = datetime.now(UTC) - timedelta(hours=1)
    data = ConsentGranted(
        user_id=user_id, consent_id="c", policy_version="1", scopes=["analysis"], granted_at=at
    )
    await project_consent(new_event(data, user_id=user_id).model_copy(update={"occurred_at": at}), data, uow)


async def handle(handler: Any, event: EventEnvelope, uow: Any) -> None:
    async with uow:
        await handler(event, parse_data(event), uow)
        await uow.commit()


def generator(bucket: Any) -> Any:
    return partial(generate_recommendations, store=bucket, writer=TemplateWriter())


def generated_of(announced: EventEnvelope) -> RecommendationsGenerated:
    """The one user's entry of a ``recommendations.batch_generated`` (as the consumers take it)."""
    assert announced.type == "recommendations.batch_generated"
    data = parse_data(announced)
    assert isinstance(data, RecommendationsBatchGenerated)
    [one] = data.each()
    return one


async def review_items_of(bucket: Any, announced: EventEnvelope) -> list[ReviewItem]:
    """The review items the announcement's claim names (the user's line of the batch object)."""
    one = generated_of(announced)
    assert one.items is None  # never inline any more
    assert one.items_claim is not None
    review = ReviewItems.model_validate_json(await redeem(bucket, one.items_claim))
    assert review.user_id == one.user_id  # the line names its user: an erasure finds it
    return review.items


async def test_nothing_is_generated_without_consent(uow, data_bucket, real_users):
    event = await persona_assigned(data_bucket, entry(real_users))
    await handle(generator(data_bucket), event, uow)
    assert uow.recommendations.rows == {}
    assert uow.published == []


async def test_generation_redeems_the_claim_stores_for_review_announces_and_is_idempotent(
    uow, data_bucket, real_users
):
    event = await persona_assigned(data_bucket, entry(real_users))
    await grant(uow, event.user_id)

    await handle(generator(data_bucket), event, uow)

    rows = list(uow.recommendations.rows.values())
    kinds = [r.kind for r in rows]
    assert 3 <= kinds.count("education") <= 5
    assert 1 <= kinds.count("offer") <= 3
    assert {r.status for r in rows} == {"pending_review"}
    assert set(uow.recommendations.upload_of.values()) == {"up1"}
    [announced] = uow.published
    assert announced.causation_id == event.id
    assert announced.user_id is None  # a batch (of one here) names no single user in its envelope
    generated = generated_of(announced)
    assert sorted(generated.recommendation_ids) == sorted(r.id for r in rows)
    assert generated.persona == parse_data(event).personas["180d"]
    traces = await uow.recommendations.chain(event.user_id)
    assert len(traces) == len(rows)
    assert "acc-" not in str(traces[0]["input"])  # the snapshot in the trace carries no account ids

    await handle(generator(data_bucket), event, uow)  # the same input again: nothing stored twice
    assert len(uow.recommendations.rows) == len(rows)
    # Announced again (the first announcement may be what was lost), with the same review items: the
    # re-run wrote exactly the stored texts.
    [first, again] = uow.published
    assert sorted(generated_of(again).recommendation_ids) == sorted(r.id for r in rows)
    # the same batch's items: the same object, under the same content-addressed key, hence the same claim
    assert generated_of(again).items_claim == generated_of(first).items_claim is not None

    stored = uow.recommendations.rows  # texts another writer's re-run would not give
    for key, row in stored.items():
        stored[key] = dataclasses.replace(row, rationale=row.rationale + " (as first written)")
    await handle(generator(data_bucket), event, uow)
    [_, _, progress] = uow.published
    assert sorted(generated_of(progress).recommendation_ids) == sorted(r.id for r in rows)
    assert generated_of(progress).items_claim is None  # no other text reviewed


async def test_generated_items_wait_for_a_review_and_no_setting_publishes_them(uow, data_bucket, real_users):
    assert "auto_approve" not in RecommenderSettings.model_fields  # the setting is gone
    event = await persona_assigned(data_bucket, entry(real_users, "savings_builder"))
    await grant(uow, event.user_id)
    await handle(generator(data_bucket), event, uow)
    assert {r.status for r in uow.recommendations.rows.values()} == {"pending_review"}
    assert all(t["operator_actions"] == [] for t in await uow.recommendations.chain(event.user_id))
    assert uow.published_types() == ["recommendations.batch_generated"]
    page = await approved_recommendations(ApprovedRecommendations(event.user_id, limit=100), uow)
    assert page.items == []


async def test_a_details_object_that_differs_from_its_claim_is_refused(uow, data_bucket, real_users):
    event = await persona_assigned(data_bucket, entry(real_users))
    await grant(uow, event.user_id)
    key = parse_data(event).details.key
    data_bucket.objects[key] = data_bucket.objects[key].replace(b"high_utilization", b"savings_builder")
    with pytest.raises(ClaimCheckMismatch):
        await handle(generator(data_bucket), event, uow)
    assert uow.recommendations.rows == {}


def test_the_typed_report_gives_the_same_id_free_snapshot_as_its_json(real_users):
    report = entry(real_users)["report"]
    typed = snapshot_of(AnalysisReport.model_validate(report))
    assert typed == parse_report(report)
    assert "account_id" not in typed.model_dump_json()


async def test_feedback_is_recorded_only_on_the_users_approved_items(uow, data_bucket, real_users):
    event = await persona_assigned(data_bucket, entry(real_users))
    await grant(uow, event.user_id)
    await handle(generator(data_bucket), event, uow)
    first = next(iter(uow.recommendations.rows))
    commits = uow.commits
    with pytest.raises(RecommendationNotFound):  # still pending review
        await record_feedback(RecordFeedback(event.user_id, first, "dismissed"), uow)
    await handle(
        apply_review,
        new_event(
            RecommendationReviewed(
                recommendation_id=first, user_id=event.user_id, decision="approved", operator_id="op"
            )
        ),
        uow,
    )
    with pytest.raises(RecommendationNotFound):  # someone else's
        await record_feedback(RecordFeedback("someone-else", first, "dismissed"), uow)
    assert uow.commits == commits + 1

    await record_feedback(RecordFeedback(event.user_id, first, "dismissed", "seen it"), uow)

    assert uow.commits == commits + 2
    [recorded] = uow.recommendations.feedback
    assert recorded["kind"] == "dismissed"
    assert recorded["comment"] == "seen it"
    assert recorded["item_id"] == uow.recommendations.rows[first].item_id
    assert await uow.recommendations.dismissed_items(event.user_id) == {recorded["item_id"]}


async def test_approved_pages_follow_each_other_without_gaps(uow, data_bucket, real_users):
    event = await persona_assigned(data_bucket, entry(real_users))
    await grant(uow, event.user_id)
    await handle(generator(data_bucket), event, uow)
    await handle(generator(data_bucket), await persona_assigned(data_bucket, entry(real_users), "up2"), uow)
    await fakes.approve_all(uow, event.user_id)
    whole = await approved_recommendations(ApprovedRecommendations(event.user_id, limit=100), uow)
    assert whole.next_after is None
    assert len(whole.items) == len(uow.recommendations.rows) > 4
    seen, after = [], None
    while True:
        page = await approved_recommendations(
            ApprovedRecommendations(event.user_id, limit=3, after=after), uow
        )
        seen += page.items
        after = page.next_after
        if after is None:
            break
    assert seen == whole.items
    assert (await approved_recommendations(ApprovedRecommendations("nobody", limit=3), uow)).items == []


async def test_traces_page_in_chain_order_with_the_whole_chain_verified(uow, data_bucket, real_users):
    event = await persona_assigned(data_bucket, entry(real_users))
    await grant(uow, event.user_id)
    await handle(generator(data_bucket), event, uow)
    chain = await uow.recommendations.chain(event.user_id)
    first = await list_traces(ListTraces(event.user_id, limit=2), uow)
    assert first.items == chain[:2]
    assert first.chain["ok"] is True
    rest = await list_traces(ListTraces(event.user_id, limit=100, after_seq=first.next_after), uow)
    assert rest.items == chain[2:]
    assert rest.next_after is None

    seq, user, rec, trace = uow.recommendations.trace_rows[-1]
    forged = {**trace, "catalog": {**trace["catalog"], "item_id": "forged"}}
    uow.recommendations.trace_rows[-1] = (seq, user, rec, forged)
    assert (await list_traces(ListTraces(event.user_id, limit=2), uow)).chain["ok"] is False


async def test_one_trace_is_replayed_and_a_missing_one_is_none(uow, data_bucket, real_users):
    event = await persona_assigned(data_bucket, entry(real_users))
    await grant(uow, event.user_id)
    await handle(generator(data_bucket), event, uow)
    first = next(iter(uow.recommendations.rows))
    checked = await check_trace(CheckTrace(event.user_id, first), uow)
    assert checked is not None
    assert checked.replay == {"matches": True, "differences": []}
    assert checked.chain["ok"] is True
    assert checked.trace["recommendation_id"] == first
    assert await check_trace(CheckTrace(event.user_id, "rec_missing"), uow) is None
    assert await check_trace(CheckTrace("someone-else", first), uow) is None


async def test_the_announcement_claims_what_a_reviewer_needs_as_the_users_line(uow, data_bucket, real_users):
    event = await persona_assigned(data_bucket, entry(real_users))
    await grant(uow, event.user_id)
    await handle(generator(data_bucket), event, uow)

    [announced] = uow.published
    items = await review_items_of(data_bucket, announced)
    claim = generated_of(announced).items_claim
    assert claim is not None
    assert claim.offset == 0
    assert claim.key.startswith("recommender/reviews/")  # names no user
    assert claim.key.endswith(".jsonl")
    assert uow.review_objects.rows == {(event.user_id, claim.key, event.user_id)}  # for an erasure
    assert [i.id for i in items] == generated_of(announced).recommendation_ids
    for item in items:
        row = uow.recommendations.rows[item.id]
        assert (item.kind, item.title, item.rationale, item.disclosure, item.catalog_item_id) == (
            row.kind,
            row.title,
            row.rationale,
            row.disclosure,
            row.item_id,
        )
        assert item.persona == row.persona
        assert item.catalog_version.startswith("catalog-v")
        assert item.guardrails.passed  # the template's text passes every check
        assert item.generator == "template"
        assert not item.fell_back_to_template
    assert len(announced.to_json()) < 48 * 1024


async def test_each_review_item_carries_the_facts_it_was_checked_against_and_its_alternatives(
    uow, data_bucket, real_users
):
    user = entry(real_users, "high_utilization")
    event = await persona_assigned(data_bucket, user)
    await grant(uow, event.user_id)
    await handle(generator(data_bucket), event, uow)
    [announced] = uow.published
    data = SimpleNamespace(items=await review_items_of(data_bucket, announced))

    details = PersonaDetails.model_validate({"report": user["report"], "accounts": user["accounts"]})
    snapshot = snapshot_of(details.report)
    expected = plan(snapshot, UserFacts.derive(snapshot, details.accounts))  # what was written and checked
    requests = {r.item_id: r for r in expected.requests}
    selected = {i.catalog_item_id for i in data.items}
    for item in data.items:
        request = requests[item.catalog_item_id]
        assert item.facts == citable(request.facts)  # exactly the table of the item's guardrail check
        assert item.trusted_names == [request.title]
        report = check_text(
            item.title, item.rationale, item.disclosure, from_citable(item.facts), tuple(item.trusted_names)
        )
        assert report.passed
        assert not check_text(
            item.title, item.rationale + " That is $9,999.", item.disclosure, from_citable(item.facts)
        ).passed

        recorded = uow.recommendations.trace_of(item.id)["alternatives"]
        assert len(item.alternatives) == len(recorded) <= 3
        for alternative, record in zip(item.alternatives, recorded, strict=True):
            assert alternative.model_dump() == {k: record[k] for k in alternative.model_dump()}
            assert record["kind"] == item.kind  # of the same kind
            assert alternative.catalog_item_id not in selected
            assert alternative.catalog_version == item.catalog_version
            assert alternative.disclosure == item.disclosure
    assert any(i.alternatives for i in data.items if i.kind == "education")
    assert any(i.alternatives for i in data.items if i.kind == "offer")


def test_the_review_item_reports_failed_checks_and_a_fallback():
    rec: Any = SimpleNamespace(
        id="r1",
        kind="offer",
        title="t",
        body="b",
        rationale="r",
        disclosure="d",
        persona="saver",
        item_id="card",
        rank=2,
        generator="template",
        trace={
            "catalog": {"version": "catalog-v1"},
            "guardrails": {
                "tone": {"passed": False},
                "grounding": {"passed": True},
                "disclosure": {"passed": True},
                "length": {"passed": False},
            },
            "generator": {"used": "template", "fallback": {"reason": "guardrails"}},
        },
    )
    item = recommend.review_item(rec)
    assert item.guardrails.failed == ["tone", "length"]
    assert item.fell_back_to_template
    assert item.catalog_version == "catalog-v1"
