"""Selection and the recommendation pipeline with the template writer, over realistic reports."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from spendsense_recommender.domain import (
    DISCLOSURE,
    Catalog,
    RecommendationSet,
    UserFacts,
    build_recommendations,
    decide,
    parse_catalog,
    parse_report,
    user_facts_from_report,
)
from spendsense_recommender.domain.alternatives import MAX_ALTERNATIVES
from spendsense_recommender.domain.catalog import Offer
from spendsense_recommender.domain.facts import build_facts
from spendsense_recommender.domain.selection import SelectionInput
from spendsense_recommender.domain.vocabulary import PERSONA_NAMES, PRODUCT_TYPES, SIGNAL_TAGS
from spendsense_shared.guardrails import check_text, from_citable
from spendsense_shared.messaging.contracts import CitableFact

Json = dict[str, Any]
PERSONAS = sorted(PERSONA_NAMES)
TRACE_KEYS = {
    "schema",
    "recommendation_id",
    "user_id",
    "input",
    "persona",
    "signals_used",
    "catalog",
    "selection",
    "eligibility",
    "output",
    "guardrails",
    "citable",
    "generator",
    "alternatives",
    "operator_actions",
    "chain",
}


def run(report: Json, user: UserFacts, **kwargs: Any) -> RecommendationSet:
    kwargs.setdefault("rule_set_version", "personas-v1")
    kwargs.setdefault("upload_id", "upl-1")
    return asyncio.run(build_recommendations(report, user, **kwargs))


def typical(entry: Json, credit_score: int | None = 720) -> UserFacts:
    return user_facts_from_report(entry["report"], entry["accounts"], credit_score)


def user_figures_in(rationale: str, report: Json) -> list[str]:
    """The user's own figures (not guidelines, offer terms or the window length) shown in a rationale."""
    facts = build_facts(parse_report(report))
    return [
        f.display
        for key, f in facts.items()
        if f.unit != "text"
        and not key.startswith("guide.")
        and key not in ("window.days", "as_of")
        and f.display in rationale
    ]


@pytest.mark.parametrize("persona", PERSONAS)
@pytest.mark.parametrize("index", [0, 1, 2])
def test_each_persona_gets_three_to_five_education_items_and_one_to_three_offers(
    real_users: Json, persona: str, index: int
) -> None:
    entry = real_users["users"][persona][index]
    result = run(entry["report"], typical(entry))
    kinds = [item.kind for item in result.items]
    assert 3 <= kinds.count("education") <= 5, [i.item_id for i in result.items]
    assert 1 <= kinds.count("offer") <= 3, result.decision.rejected_offers
    assert kinds == sorted(kinds)  # education first, then offers
    assert result.decision.persona["primary"] == persona
    assert result.items[0].persona == persona
    for item in result.items:
        assert item.disclosure == DISCLOSURE
        assert set(item.trace) == TRACE_KEYS
        assert item.trace["guardrails"]["passed"] is True
        assert item.generator == "template"
        assert user_figures_in(item.rationale, entry["report"]), item.rationale


@pytest.mark.parametrize("persona", PERSONAS)
def test_the_primary_persona_leads_the_education_items(real_users: Json, persona: str) -> None:
    entry = real_users["users"][persona][0]
    result = run(entry["report"], typical(entry))
    first = result.decision.education[0]
    assert f"persona:{persona}" in first.reasons


def test_the_rationale_cites_the_users_own_card(hand_report: Callable[..., Json]) -> None:
    report = hand_report()
    result = run(
        report,
        UserFacts(annual_income=55_000, credit_score=720, products=frozenset({"checking", "credit_card"})),
    )
    explainer = next(i for i in result.items if i.item_id == "edu-utilization-explainer")
    assert explainer.rationale.startswith(
        "Your Visa Signature ending in 4523 is at 68 % utilization ($3,400 of a $5,000 limit)."
    )
    assert explainer.trace["signals_used"]["facts"]["card.balance"] == 3400.0
    assert explainer.trace["signals_used"]["tags"]["card_utilization_high"]["value"] == 0.68


def test_a_complete_trace(hand_report: Callable[..., Json]) -> None:
    user = UserFacts(annual_income=55_000, credit_score=720, products=frozenset({"checking", "credit_card"}))
    result = run(hand_report(), user, upload_id="upl-9", as_of="2026-10-31")
    offer = next(i for i in result.items if i.item_id == "offer-balance-transfer-card")
    trace = offer.trace
    assert trace["input"]["upload_id"] == "upl-9"
    assert trace["input"]["as_of"] == "2026-10-31"
    assert trace["persona"]["rule_set_version"] == "personas-v1"
    assert trace["persona"]["criteria_fired"] == {"high_utilization": ["hand_built"]}
    assert trace["catalog"] == {
        "version": "catalog-v1",
        "content_hash": result.decision.catalog_hash,
        "item_id": "offer-balance-transfer-card",
        "kind": "offer",
    }
    rules = {c["rule"]: c for c in trace["eligibility"]}
    assert rules["min_annual_income"] == {
        "rule": "min_annual_income",
        "value": 55000.0,
        "threshold": 35000.0,
        "passed": True,
    }
    assert rules["min_credit_score"]["value"] == 720
    assert rules["min_credit_score"]["passed"] is True
    assert {"not_already_held", "persona_signal_fit", "not_predatory"} <= set(rules)
    assert trace["guardrails"]["tone"]["passed"]
    assert trace["guardrails"]["grounding"]["passed"]
    assert trace["generator"]["used"] == "template"
    assert "latency_ms" in trace["generator"]
    assert trace["operator_actions"] == []
    assert set(trace["chain"]) == {"previous_hash", "content_hash", "hash"}


def test_dismissed_items_are_never_selected_again(real_users: Json) -> None:
    entry = real_users["users"]["high_utilization"][0]
    user = typical(entry)
    first = run(entry["report"], user)
    dismissed = {i.item_id for i in first.items}
    second = run(entry["report"], user, dismissed=dismissed)
    assert not dismissed & {i.item_id for i in second.items}
    assert {s["item_id"] for s in second.decision.skipped if s["reason"] == "dismissed"} == dismissed
    third = run(entry["report"], user, dismissed=dismissed | {i.item_id for i in second.items})
    assert not (dismissed | {i.item_id for i in second.items}) & {i.item_id for i in third.items}


# -- alternatives: what an operator may put in an item's place ----------------------------------------


def recorded_check(record: Json) -> Any:
    """``check_text`` of a recorded text against the facts and trusted names recorded with it."""
    facts = from_citable(CitableFact.model_validate(f) for f in record["citable"]["facts"])
    return check_text(
        record["title"],
        record["rationale"],
        record["disclosure"],
        facts,
        tuple(record["citable"]["trusted_names"]),
    )


@pytest.mark.parametrize("persona", PERSONAS)
def test_alternatives_are_unselected_eligible_items_of_the_same_kind_best_first(
    real_users: Json, catalog: Catalog, persona: str
) -> None:
    entry = real_users["users"][persona][0]
    result = run(entry["report"], typical(entry))
    selected = {i.item_id for i in result.items}
    unselected = [p.item_id for p in result.decision.alternatives]
    assert not selected & set(unselected)
    offer_types = {i.item_id: i.product_type for i in result.items if i.kind == "offer"}
    for item in result.items:
        alternatives = item.trace["alternatives"]
        assert len(alternatives) <= MAX_ALTERNATIVES
        ids = [a["catalog_item_id"] for a in alternatives]
        assert ids == [i for i in unselected if i in ids]  # best-ranked first
        others = {t for i, t in offer_types.items() if i != item.item_id}
        fitting = [
            i
            for i in unselected
            if catalog.item(i).kind == item.kind
            and getattr(catalog.item(i), "product_type", None) not in others
        ]
        assert ids == fitting[:MAX_ALTERNATIVES]  # every one that fits, up to the cap
        for alternative in alternatives:
            source = catalog.item(alternative["catalog_item_id"])
            assert alternative["kind"] == source.kind == item.kind
            assert alternative["catalog_version"] == catalog.version
            assert (alternative["title"], alternative["body"]) == (source.title, source.body)
            assert alternative["disclosure"] == DISCLOSURE
            assert recorded_check(alternative).passed
            assert alternative["citable"]["trusted_names"] == [source.title]
    assert any(item.trace["alternatives"] for item in result.items)


def test_an_offers_alternatives_never_repeat_another_offers_product_type(
    real_users: Json, catalog: Catalog
) -> None:
    seen = 0
    for entries in real_users["users"].values():
        for entry in entries:
            result = run(entry["report"], typical(entry))
            offers = [i for i in result.items if i.kind == "offer"]
            for item in offers:
                taken = {o.product_type for o in offers if o is not item}
                for alternative in item.trace["alternatives"]:
                    seen += 1
                    assert alternative["details"]["product_type"] not in taken
                    assert (
                        alternative["details"]["partner"]
                        == catalog.item(alternative["catalog_item_id"]).partner
                    )
    assert seen


def test_dismissed_items_are_never_alternatives(real_users: Json) -> None:
    entry = real_users["users"]["high_utilization"][0]
    user = typical(entry)
    first = run(entry["report"], user)
    offered = {a["catalog_item_id"] for i in first.items for a in i.trace["alternatives"]}
    assert offered
    second = run(entry["report"], user, dismissed=offered)
    assert not offered & {a["catalog_item_id"] for i in second.items for a in i.trace["alternatives"]}


def test_each_trace_records_exactly_what_its_text_was_checked_against(real_users: Json) -> None:
    entry = real_users["users"]["subscription_heavy"][0]
    result = run(entry["report"], typical(entry))
    table = build_facts(parse_report(entry["report"]))
    for item in result.items:
        record = {**item.trace["output"], "citable": item.trace["citable"]}
        assert recorded_check(record).passed
        keys = [f["key"] for f in record["citable"]["facts"]]
        assert keys  # every rationale cites the user's figures
        assert len(keys) < len(table)  # only the facts its template cites, not the whole table
        assert record["citable"]["trusted_names"] == [item.title]
        forged = {**record, "rationale": record["rationale"] + " You could save $9,999."}
        assert not recorded_check(forged).passed


def test_the_same_input_gives_the_same_output(real_users: Json) -> None:
    entry = real_users["users"]["subscription_heavy"][1]
    user = typical(entry)
    first = run(entry["report"], user, dismissed=["edu-bill-alerts", "offer-bill-negotiation"])
    reordered = {**entry["report"], "windows": dict(reversed(list(entry["report"]["windows"].items())))}
    second = run(reordered, user, dismissed=["offer-bill-negotiation", "edu-bill-alerts"])
    assert [(i.id, i.rationale) for i in first.items] == [(i.id, i.rationale) for i in second.items]
    assert first.decision == second.decision
    assert len({i.id for i in first.items}) == len(first.items)


def test_recommendation_ids_depend_on_user_upload_and_item(real_users: Json) -> None:
    entry = real_users["users"]["savings_builder"][0]
    user = typical(entry)
    a = {i.item_id: i.id for i in run(entry["report"], user, upload_id="u1").items}
    b = {i.item_id: i.id for i in run(entry["report"], user, upload_id="u2").items}
    assert a.keys() == b.keys()
    assert all(a[k] != b[k] for k in a)


def test_an_unknown_credit_score_makes_offers_that_require_one_ineligible(
    hand_report: Callable[..., Json],
) -> None:
    user = UserFacts(annual_income=80_000, credit_score=None, products=frozenset({"checking", "credit_card"}))
    result = run(hand_report(), user)
    offers = {i.item_id for i in result.items if i.kind == "offer"}
    assert offers
    assert not offers & {"offer-balance-transfer-card", "offer-consolidation-loan"}
    rejected = {r["item_id"]: r for r in result.decision.rejected_offers}
    score = next(
        c for c in rejected["offer-balance-transfer-card"]["checks"] if c["rule"] == "min_credit_score"
    )
    assert score == {"rule": "min_credit_score", "value": None, "threshold": 670, "passed": False}


def test_no_offer_for_a_product_the_user_already_has(hand_report: Callable[..., Json]) -> None:
    report = hand_report(
        primary="savings_builder",
        savings={"growth_rate": 0.1, "net_inflow_monthly": 400.0},
        credit={"max_utilization": 0.1, "cards": []},
    )
    has_hysa = UserFacts(
        annual_income=60_000, credit_score=700, products=frozenset({"checking", "high_yield_savings"})
    )
    offers = {i.item_id for i in run(report, has_hysa).items if i.kind == "offer"}
    assert "offer-high-yield-savings" not in offers
    without = {
        i.item_id for i in run(report, has_hysa.model_copy(update={"products": frozenset({"savings"})})).items
    }
    assert "offer-high-yield-savings" in without


def test_at_most_one_offer_per_product_type(real_users: Json, catalog: Catalog) -> None:
    for entries in real_users["users"].values():
        for entry in entries:
            offers = [
                catalog.item(i.item_id)
                for i in run(entry["report"], typical(entry)).items
                if i.kind == "offer"
            ]
            types = [o.product_type for o in offers if isinstance(o, Offer)]
            assert len(types) == len(set(types))


def test_the_30_day_window_is_used_when_the_180_day_window_is_missing(
    hand_report: Callable[..., Json],
) -> None:
    report = hand_report(primary="cash_flow_balancer", windows=("30d",))
    snapshot = parse_report(report)
    assert (snapshot.window, snapshot.window_days, snapshot.primary_persona) == (
        "30d",
        30,
        "cash_flow_balancer",
    )
    result = run(report, UserFacts(annual_income=50_000))
    assert "over the last 30 days" in " ".join(i.rationale for i in result.items)


def test_personas_matched_only_in_the_other_window_count_as_recent(hand_report: Callable[..., Json]) -> None:
    report = hand_report(primary="general_wellness")
    report["windows"]["30d"]["persona"] = {
        "primary": "cash_flow_balancer",
        "matched": [{"id": "cash_flow_balancer", "criteria": ["overdraft_or_nsf_fee"]}],
    }
    snapshot = parse_report(report)
    assert snapshot.primary_persona == "general_wellness"
    assert [m.id for m in snapshot.recent_matched] == ["cash_flow_balancer"]


def test_a_report_without_windows_or_with_an_unknown_persona_is_refused(
    hand_report: Callable[..., Json],
) -> None:
    with pytest.raises(ValueError, match="no windows"):
        parse_report({"user_id": "u", "windows": {}})
    with pytest.raises(ValueError, match="unknown persona"):
        parse_report(hand_report(primary="big_spender", matched=[]))


def test_the_catalog_version_must_match_the_input(real_users: Json, catalog: Catalog) -> None:
    entry = real_users["users"]["general_wellness"][0]
    inputs = SelectionInput(
        snapshot=parse_report(entry["report"]), user=typical(entry), catalog_version="catalog-v2"
    )
    with pytest.raises(ValueError, match="catalog-v2"):
        decide(inputs, catalog)


# -- property: no offer reaches a user who fails its rules --------------------------------------------

_PRODUCTS = sorted(
    PRODUCT_TYPES
    - {"credit_card", "balance_transfer_card", "secured_credit_card", "personal_loan", "credit_builder_loan"}
)


@st.composite
def offers(draw: st.DrawFn) -> list[dict[str, Any]]:
    count = draw(st.integers(1, 6))
    return [
        {
            "id": f"offer-random-{n}",
            "partner": "Example Partner",
            "product_type": draw(st.sampled_from(_PRODUCTS)),
            "title": "A random offer",
            "body": "A body long enough to pass the minimum length check.",
            "personas": draw(st.lists(st.sampled_from(PERSONAS), max_size=2)) or ["general_wellness"],
            "signals": draw(st.lists(st.sampled_from(sorted(SIGNAL_TAGS)), max_size=2)),
            "eligibility": {
                "min_annual_income": draw(st.none() | st.floats(0, 200_000)),
                "min_credit_score": draw(st.none() | st.integers(300, 850)),
                "excludes_products": draw(st.lists(st.sampled_from(_PRODUCTS), max_size=3)),
            },
            "rationale": ["Your average monthly spending is {cash.monthly_spending} over {window.days}."],
        }
        for n in range(count)
    ]


users = st.builds(
    UserFacts,
    annual_income=st.none() | st.floats(0, 250_000),
    credit_score=st.none() | st.integers(300, 850),
    products=st.frozensets(st.sampled_from(_PRODUCTS), max_size=5),
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(offer_data=offers(), user=users, persona=st.sampled_from(PERSONAS))
def test_no_offer_ever_reaches_a_user_who_fails_its_eligibility_rules(
    hand_report: Callable[..., Json],
    catalog: Catalog,
    offer_data: list[dict[str, Any]],
    user: UserFacts,
    persona: str,
) -> None:
    random_catalog = parse_catalog(
        {
            "version": "catalog-v1",
            "education": [e.model_dump() for e in catalog.education],
            "offers": offer_data,
        }
    )
    report = hand_report(primary=persona)
    snapshot = parse_report(report)
    decision = decide(
        SelectionInput(snapshot=snapshot, user=user, catalog_version="catalog-v1"), random_catalog
    )
    offer_alternatives = [p for p in decision.alternatives if p.kind == "offer"]
    for pick in [*decision.offers, *offer_alternatives]:  # what an operator may swap in too
        offer = random_catalog.item(pick.item_id)
        assert isinstance(offer, Offer)
        rules = offer.eligibility
        if rules.min_annual_income is not None:
            assert user.annual_income is not None
            assert user.annual_income >= rules.min_annual_income
        if rules.min_credit_score is not None:
            assert user.credit_score is not None
            assert user.credit_score >= rules.min_credit_score
        assert offer.product_type not in user.products
        assert not set(rules.excludes_products) & user.products
        assert set(offer.personas) & set(snapshot.persona_ids) or set(offer.signals) & set(
            decision.signal_tags
        )
        assert all(c.passed for c in pick.checks)
    for rejected in decision.rejected_offers:
        assert any(not c["passed"] for c in rejected["checks"]) or "rationale" in rejected["reason"]
