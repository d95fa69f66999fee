"""Catalog validation: the shipped catalog loads; predatory, unknown or unsafe content is refused."""

from __future__ import annotations

import copy
from typing import Any

import pytest
import yaml

from spendsense_recommender.domain.catalog import (
    DEFAULT_CATALOG_VERSION,
    Catalog,
    CatalogError,
    catalog_path,
    load_catalog,
    parse_catalog,
)
from spendsense_recommender.domain.vocabulary import PERSONA_IDS, SIGNAL_TAGS


def minimal() -> dict[str, Any]:
    return {
        "version": "catalog-v9",
        "education": [
            {
                "id": "edu-test",
                "format": "article",
                "title": "A test article",
                "body": "A body long enough to pass the minimum length check.",
                "personas": ["high_utilization"],
                "rationale": ["Your {card.name} ending in {card.mask} is at {card.utilization} utilization."],
            }
        ],
        "offers": [
            {
                "id": "offer-test",
                "partner": "Example Bank",
                "product_type": "balance_transfer_card",
                "title": "A test card",
                "body": "A body long enough to pass the minimum length check.",
                "personas": ["high_utilization"],
                "terms": {"apr": 21.99},
                "rationale": [
                    "You paid {credit.interest_charges} in interest; this card's APR is {offer.apr}."
                ],
            }
        ],
    }


def with_offer(**changes: Any) -> dict[str, Any]:
    data = copy.deepcopy(minimal())
    data["offers"][0].update(changes)
    return data


def problems_of(data: dict[str, Any]) -> list[str]:
    with pytest.raises(CatalogError) as caught:
        parse_catalog(data)
    return caught.value.problems


def test_the_shipped_catalog_loads_with_its_version() -> None:
    catalog = load_catalog()
    assert catalog.version == DEFAULT_CATALOG_VERSION
    assert len(catalog.education) >= 18
    assert len(catalog.offers) >= 10
    assert len({i.id for i in catalog.items}) == len(catalog.items)
    assert len(catalog.content_hash) == 64


def test_every_persona_and_signal_tag_is_covered_by_the_shipped_catalog() -> None:
    catalog = load_catalog()
    for persona in PERSONA_IDS:
        assert sum(persona in i.personas for i in catalog.education) >= 3, persona
        assert any(persona in o.personas for o in catalog.offers), persona
    used_tags = {t for i in catalog.items for t in i.signals}
    assert used_tags <= set(SIGNAL_TAGS)


def test_a_minimal_catalog_is_valid() -> None:
    assert isinstance(parse_catalog(minimal()), Catalog)


@pytest.mark.parametrize("product", ["payday_loan", "title_loan", "pawn_loan", "rent_to_own"])
def test_a_predatory_product_is_refused_with_a_clear_error(product: str) -> None:
    problems = problems_of(with_offer(product_type=product, terms={"apr": 400}))
    assert problems[0] == f"offers[offer-test]: {product} is a predatory product and cannot be offered"
    with pytest.raises(CatalogError, match="predatory"):
        parse_catalog(with_offer(product_type=product))


def test_an_apr_over_36_percent_is_refused() -> None:
    problems = problems_of(with_offer(terms={"apr": 36.01}))
    assert problems == ["offers[offer-test].terms.apr: APR 36.01 % is over the 36 % cap (predatory)"]


def test_an_apr_of_exactly_36_percent_is_allowed() -> None:
    assert parse_catalog(with_offer(terms={"apr": 36.0})).offers[0].terms.apr == 36.0


def test_predatory_wording_is_refused_whatever_the_product_type() -> None:
    problems = problems_of(with_offer(title="Fast payday advance card"))
    assert any("predatory product wording 'payday'" in p for p in problems)


def test_a_credit_product_must_state_its_apr() -> None:
    assert "offers[offer-test].terms.apr: a credit product must state its APR" in problems_of(
        with_offer(terms={})
    )


def test_an_unknown_persona_tag_is_refused() -> None:
    data = minimal()
    data["education"][0]["personas"] = ["high_utilisation"]
    problems = problems_of(data)
    assert problems[0].startswith("education[edu-test]: unknown persona 'high_utilisation' (known: ")


@pytest.mark.parametrize(
    ("field", "value", "expected"),
    [
        ("signals", ["big_spender"], "unknown signal tag 'big_spender'"),
        ("rationale", ["Your {card.nickname} is shown."], "unknown fact {card.nickname}"),
        (
            "rationale",
            ["You have 3 cards at {card.utilization}."],
            "figures must come from {fact} placeholders",
        ),
        ("rationale", ["Stop being irresponsible with {card.name}."], "judgemental wording 'irresponsible'"),
        (
            "rationale",
            [{"text": "Your {card.name} is at {card.utilization}.", "when": ["nope"]}],
            "unknown signal tag 'nope'",
        ),
        ("title", "Why you keep wasting money", "judgemental wording 'wasting'"),
    ],
)
def test_invalid_education_content_is_refused(field: str, value: Any, expected: str) -> None:
    data = minimal()
    data["education"][0][field] = value
    assert any(expected in p for p in problems_of(data)), problems_of(data)


def test_an_offer_term_placeholder_needs_the_term() -> None:
    data = with_offer(rationale=["This card has a {offer.apy} APY on {card.balance}."])
    assert any("{offer.apy} needs that term" in p for p in problems_of(data))


def test_an_unknown_product_type_and_exclusion_are_refused() -> None:
    problems = problems_of(
        with_offer(product_type="crypto_card", eligibility={"excludes_products": ["yacht"]})
    )
    assert "offers[offer-test].product_type: unknown product type 'crypto_card'" in problems
    assert "offers[offer-test].eligibility.excludes_products: unknown product type 'yacht'" in problems


def test_schema_errors_name_the_item_and_field() -> None:
    data = with_offer(eligibility={"min_credit_score": 900})
    assert any(p.startswith("offers[offer-test].eligibility.min_credit_score:") for p in problems_of(data))


def test_duplicate_ids_are_refused() -> None:
    data = minimal()
    data["education"].append(copy.deepcopy(data["education"][0]))
    assert "education[edu-test]: duplicate id" in problems_of(data)


def test_every_problem_is_reported_at_once() -> None:
    data = minimal()
    data["education"][0]["personas"] = ["nobody"]
    data["offers"][0]["product_type"] = "unicorn"
    assert len(problems_of(data)) >= 2


def test_yaml_text_parses_like_a_mapping() -> None:
    assert parse_catalog(yaml.safe_dump(minimal())) == parse_catalog(minimal())


def test_an_unknown_catalog_version_is_an_error() -> None:
    with pytest.raises(FileNotFoundError):
        load_catalog("catalog-v999")
    with pytest.raises(ValueError, match="not a catalog version"):
        load_catalog("../../etc/passwd")


def test_the_shipped_file_is_the_one_loaded() -> None:
    assert catalog_path(DEFAULT_CATALOG_VERSION).is_file()
