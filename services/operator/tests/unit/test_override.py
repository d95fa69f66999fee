"""Overrides: the checks an edited text or a catalog alternative must pass (pure), and the override and
check use cases on the in-memory unit of work — all or nothing, audited with the text before and after,
announced as ``recommendation.reviewed`` decision overridden, only with the user's current consent."""

from __future__ import annotations

import dataclasses

import pytest

from spendsense_operator.domain.commands import CheckOverride, Decide, ListReview, Override
from spendsense_operator.domain.model import ConsentRequired, RecommendationsNotFound, ReviewFilter
from spendsense_operator.domain.override import (
    CATALOG_BODY,
    EditedText,
    GuardrailsFailed,
    NotAnAlternative,
    check_alternative,
    check_edit,
    replacement,
)
from spendsense_operator.handlers.review import check_override, decide, list_review, override
from spendsense_shared.guardrails import DISCLOSURE
from spendsense_shared.messaging.catalog import OverrideText, parse_data
from spendsense_shared.testing.fakes import load_beside

support = load_beside(__file__, "support.py", "spendsense_operator_unit_support")
item, alternative, queued, consent = support.item, support.alternative, support.queued, support.consent
GOOD = EditedText(
    title="Credit utilization 101: a gentle plan",
    body=support.CATALOG_BODY + " Paying $3,400 down over time is one way to get there.",
    rationale="Your Visa Signature ending in 4523 is at 68 % utilization; paying it toward $5,000 of room helps.",
)


async def stored(uow, rid: str = "r1"):
    return uow.queue.items[rid]


# --- the checks (pure) ---------------------------------------------------------------------------


async def test_an_edit_citing_only_the_users_figures_and_the_catalogs_passes_every_check(uow, data_bucket):
    await queued(uow, data_bucket, "u1", item("r1"))
    report = check_edit(await stored(uow), GOOD)
    assert report.passed, report.to_dict()
    out = report.to_dict()
    assert out["reasons"] == []
    assert out["source"] == "edited"
    assert out["grounding"]["checked_by"] == "operator"
    facts = {(c["field"], c["text"]): c["fact"] for c in out["grounding"]["claims"]}
    assert facts[("body", "$3,400")] == "card.balance"
    assert facts[("body", "30 %")] == CATALOG_BODY  # the catalog body's own figure
    assert facts[("body", "12-month")] == CATALOG_BODY
    assert facts[("title_rationale", "68 %")] == "card.utilization"
    assert out["length"]["limits"] == {"title": [3, 90], "rationale": [40, 600], "body": [20, 2000]}


@pytest.mark.parametrize(
    ("change", "reasons", "field"),
    [
        ({"rationale": GOOD.rationale.replace("68 %", "73 %")}, ["grounding"], "title_rationale"),
        ({"title": "Credit utilization 101 for 2 cards"}, ["grounding"], "title_rationale"),
        ({"body": GOOD.body + " Most people pay $9,999 a year."}, ["grounding"], "body"),
        ({"body": GOOD.body + " Stop wasting money."}, ["tone"], "body"),
        (
            {"rationale": "You are irresponsible: your card ending in 4523 is at 68 % utilization."},
            ["tone"],
            None,
        ),
        ({"title": "Hi"}, ["length"], None),
        ({"body": "Too short."}, ["length"], None),
        ({"rationale": "At 68 %."}, ["length"], None),
    ],
)
async def test_an_edit_failing_a_check_names_it(uow, data_bucket, change, reasons, field):
    await queued(uow, data_bucket, "u1", item("r1"))
    report = check_edit(await stored(uow), dataclasses.replace(GOOD, **change)).to_dict()
    assert not report["passed"]
    assert report["reasons"] == reasons
    if "grounding" in reasons:
        [unmatched] = [c for c in report["grounding"]["claims"] if c["fact"] is None]
        assert unmatched["field"] == field
        assert report["grounding"]["unmatched"] == [unmatched["text"]]
    if "tone" in reasons:
        assert report["tone"]["hits"]
        assert not report["tone"]["passed"]


async def test_the_tone_check_covers_the_body_and_names_the_field(uow, data_bucket):
    await queued(uow, data_bucket, "u1", item("r1"))
    edit = dataclasses.replace(GOOD, body=GOOD.body + " You're overspending.")
    [hit] = check_edit(await stored(uow), edit).to_dict()["tone"]["hits"]
    assert hit == {"field": "body", "rule": "overspending", "match": "overspending"}


async def test_an_edited_override_keeps_the_catalog_item_and_carries_the_standard_disclosure(
    uow, data_bucket
):
    await queued(uow, data_bucket, "u1", item("r1"))
    text, report = replacement(await stored(uow), GOOD, None)
    assert text == OverrideText(
        title=GOOD.title,
        body=GOOD.body,
        rationale=GOOD.rationale,
        disclosure=DISCLOSURE,
        catalog_item_id="item-r1",
        catalog_version="catalog-v1",
        source="edited",
    )
    assert report.disclosure_ok


async def test_an_alternative_must_be_one_the_recommender_offered(uow, data_bucket):
    await queued(uow, data_bucket, "u1", item("r1"))
    with pytest.raises(NotAnAlternative) as refused:
        replacement(await stored(uow), None, "edu-payday-help")
    assert refused.value.allowed == ["edu-balance-plan", "edu-autopay"]
    with pytest.raises(ValueError, match="exactly one"):
        replacement(await stored(uow), GOOD, "edu-autopay")
    with pytest.raises(ValueError, match="exactly one"):
        replacement(await stored(uow), None, None)

    text, report = replacement(await stored(uow), None, "edu-autopay")
    assert (text.source, text.catalog_item_id, text.title) == (
        "catalog_item",
        "edu-autopay",
        "Another read: edu-autopay",
    )
    assert report.passed
    assert report.to_dict()["grounding"] == {
        "passed": True,
        "checked_by": "recommender",
        "claims": [],
        "unmatched": [],
    }


def test_an_alternative_still_gets_the_checks_that_need_no_facts():
    shaming = alternative("x", body="A guide for people who are bad with money and keep wasting it.")
    assert check_alternative(shaming).reasons == ["tone"]
    assert check_alternative(alternative("x", disclosure="Not advice.")).reasons == ["disclosure"]
    assert check_alternative(alternative("x", rationale="Short.")).reasons == ["length"]


# --- the use cases -------------------------------------------------------------------------------


async def test_an_edited_override_stores_the_text_beside_the_original_audits_and_announces_it(
    uow, data_bucket
):
    await queued(uow, data_bucket, "u1", item("r1"), item("r2"))
    result = await override(Override("r1", "op-1", "clearer wording", text=GOOD), uow)

    assert result.report.passed
    r1 = await stored(uow)
    assert (r1.status, r1.decided_by, r1.reason) == ("overridden", "op-1", "clearer wording")
    assert r1.override is not None
    assert r1.override.title == GOOD.title
    assert (r1.title, r1.rationale) == (
        "Credit utilization 101",
        support.GOOD_RATIONALE,
    )  # the original stays
    assert result.item == r1
    assert uow.queue.items["r2"].status == "pending"

    [entry] = uow.audit.entries
    assert (entry.action, entry.before_status, entry.after_status, entry.reason) == (
        "override",
        "pending",
        "overridden",
        "clearer wording",
    )
    assert entry.before is not None
    assert entry.before["rationale"] == support.GOOD_RATIONALE
    assert entry.after == r1.override.model_dump()

    [event] = uow.published
    reviewed = parse_data(event)
    assert event.type == "recommendation.reviewed"
    assert event.user_id == "u1"
    assert (reviewed.decision, reviewed.operator_id, reviewed.reason) == (
        "overridden",
        "op-1",
        "clearer wording",
    )  # type: ignore[attr-defined]
    assert reviewed.override == r1.override  # type: ignore[attr-defined]

    page = await list_review(ListReview(ReviewFilter(), "date", 10), uow)
    assert page.counts["overridden"] == 1


async def test_overriding_with_an_alternative_and_again_audits_what_was_shown_before(uow, data_bucket):
    await queued(uow, data_bucket, "u1", item("r1"))
    await decide(Decide("flagged", "op-1", recommendation_ids=("r1",), reason="check it"), uow)
    await override(Override("r1", "op-2", "a better fit", catalog_item_id="edu-balance-plan"), uow)
    await override(Override("r1", "op-3", "reworded", text=GOOD), uow)

    first, second = uow.audit.entries[1:]
    assert first.before_status == "flagged"
    assert first.after is not None
    assert first.after["source"] == "catalog_item"
    assert second.before == first.after  # what the user was shown: the alternative
    assert second.before_status == "overridden"
    assert (await stored(uow)).flagged
    assert [parse_data(e).decision for e in uow.published] == ["flagged", "overridden", "overridden"]  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("command", "error"),
    [
        (
            Override("r1", "op-1", "x", text=dataclasses.replace(GOOD, body=GOOD.body + " $9,999!")),
            GuardrailsFailed,
        ),
        (Override("r1", "op-1", "x", catalog_item_id="not-offered"), NotAnAlternative),
        (Override("nope", "op-1", "x", text=GOOD), RecommendationsNotFound),
    ],
)
async def test_a_refused_override_changes_nothing(uow, data_bucket, command, error):
    await queued(uow, data_bucket, "u1", item("r1"))
    before = dict(uow.queue.items)
    with pytest.raises(error) as refused:
        await override(command, uow)
    if error is GuardrailsFailed:
        assert refused.value.report.reasons == ["grounding"]
    assert uow.queue.items == before
    assert uow.audit.entries == []
    assert uow.published == []


async def test_an_override_and_its_check_need_the_users_current_consent(uow, data_bucket):
    await queued(uow, data_bucket, "u1", item("r1"))
    await consent(uow, "u1", granted=False, hours=1)
    with pytest.raises(ConsentRequired) as refused:
        await override(Override("r1", "op-1", "x", text=GOOD), uow)
    assert refused.value.user_ids == ["u1"]
    with pytest.raises(ConsentRequired):
        await check_override(CheckOverride("r1", text=GOOD), uow)
    assert (await stored(uow)).status == "pending"
    assert uow.audit.entries == []
    assert uow.published == []


async def test_the_check_reports_without_saving_anything(uow, data_bucket):
    await queued(uow, data_bucket, "u1", item("r1"))
    failing = dataclasses.replace(GOOD, rationale=GOOD.rationale.replace("68 %", "73 %"))
    report = await check_override(CheckOverride("r1", text=failing), uow)
    assert report.reasons == ["grounding"]
    assert (await check_override(CheckOverride("r1", catalog_item_id="edu-autopay"), uow)).passed
    with pytest.raises(NotAnAlternative):
        await check_override(CheckOverride("r1", catalog_item_id="nope"), uow)
    with pytest.raises(RecommendationsNotFound):
        await check_override(CheckOverride("nope", text=GOOD), uow)
    assert (await stored(uow)).status == "pending"
    assert uow.audit.entries == []
    assert uow.published == []


async def test_the_queue_keeps_each_items_facts_trusted_names_and_alternatives(uow, data_bucket):
    await queued(uow, data_bucket, "u1", item("r1"), item("r2", alternatives=[], facts=[], trusted_names=[]))
    r1, r2 = uow.queue.items["r1"], uow.queue.items["r2"]
    assert r1.facts == support.FACTS
    assert r1.trusted_names == ["Credit utilization 101"]
    assert [a.catalog_item_id for a in r1.alternatives] == ["edu-balance-plan", "edu-autopay"]
    assert (r2.facts, r2.trusted_names, r2.alternatives) == ([], [], [])
