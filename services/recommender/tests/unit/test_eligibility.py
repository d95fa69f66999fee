"""User facts for eligibility, and the recorded checks of an offer."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from spendsense_recommender.domain import (
    AccountInfo,
    Catalog,
    UserFacts,
    estimate_annual_income,
    parse_report,
    products_from_accounts,
    user_facts_from_report,
)
from spendsense_recommender.domain.catalog import Offer
from spendsense_recommender.domain.eligibility import check_offer

Json = dict[str, Any]


def account(type_: str, subtype: str | None, name: str = "", holder: str = "individual") -> AccountInfo:
    return AccountInfo(type=type_, subtype=subtype, name=name, holder_category=holder)


@pytest.mark.parametrize(
    ("accounts", "expected"),
    [
        ([account("depository", "checking")], {"checking"}),
        ([account("depository", "savings", "Everyday Savings")], {"savings"}),
        ([account("depository", "savings", "High Yield Savings")], {"savings", "high_yield_savings"}),
        (
            [account("depository", "money market"), account("depository", "cd")],
            {"money_market", "certificate_of_deposit"},
        ),
        ([account("credit", "credit card", "Platinum")], {"credit_card"}),
        ([account("credit", "credit card", "Secured Visa")], {"credit_card", "secured_credit_card"}),
        ([account("credit", None)], {"credit_card"}),
        ([account("loan", "student"), account("loan", "mortgage")], {"student_loan", "mortgage"}),
        ([account("investment", "brokerage")], {"investment"}),
        ([account("depository", "savings", "Biz HYSA", holder="business")], set()),
    ],
)
def test_products_are_derived_from_account_types_subtypes_and_names(
    accounts: list[AccountInfo], expected: set[str]
) -> None:
    assert products_from_accounts(accounts) == expected


def test_annual_income_is_the_window_income_annualized(hand_report: Callable[..., Json]) -> None:
    snapshot = parse_report(hand_report())
    assert estimate_annual_income(snapshot) == round(27_400 * 365.25 / 180, 2)
    no_income = parse_report(hand_report(income={"income_total": 0.0}, cash_flow={"income": 0.0}))
    assert estimate_annual_income(no_income) is None


def test_user_facts_from_a_report_and_plaid_accounts(hand_report: Callable[..., Json]) -> None:
    accounts = [
        {"type": "depository", "subtype": "checking", "account_id": "a1", "balances": {}},
        {"type": "credit", "subtype": "credit card"},
    ]
    facts = user_facts_from_report(hand_report(), accounts, credit_score=700)
    assert facts.products == {"checking", "credit_card"}
    assert facts.credit_score == 700
    assert facts.annual_income is not None
    assert facts.annual_income > 55_000


def rule(checks: list[Any], name: str) -> Json:
    return next(c.model_dump() for c in checks if c.rule == name)


def test_every_rule_is_recorded_with_value_threshold_and_result(catalog: Catalog) -> None:
    offer = catalog.item("offer-balance-transfer-card")
    assert isinstance(offer, Offer)
    user = UserFacts(
        annual_income=30_000, credit_score=None, products=frozenset({"credit_card", "balance_transfer_card"})
    )
    checks = check_offer(offer, user, ["high_utilization"], ["interest_charges"])
    assert rule(checks, "min_annual_income") == {
        "rule": "min_annual_income",
        "value": 30_000,
        "threshold": 35_000,
        "passed": False,
    }
    assert rule(checks, "min_credit_score") == {
        "rule": "min_credit_score",
        "value": None,
        "threshold": 670,
        "passed": False,
    }
    held = rule(checks, "not_already_held")
    assert held["value"] == ["balance_transfer_card"]
    assert held["passed"] is False
    fit = rule(checks, "persona_signal_fit")
    assert fit["passed"]
    assert fit["value"] == {
        "personas": ["high_utilization"],
        "signals": ["interest_charges"],
    }
    assert rule(checks, "not_predatory")["passed"] is True


def test_fit_fails_without_a_shared_persona_or_signal(catalog: Catalog) -> None:
    offer = catalog.item("offer-subscription-manager")
    assert isinstance(offer, Offer)
    checks = check_offer(offer, UserFacts(), ["savings_builder"], ["savings_growing"])
    assert rule(checks, "persona_signal_fit")["passed"] is False
    assert [c.rule for c in checks] == ["not_already_held", "persona_signal_fit", "not_predatory"]


def test_a_utilization_cap_is_checked_when_an_offer_sets_one(catalog: Catalog) -> None:
    offer = catalog.item("offer-debt-payoff-app")
    assert isinstance(offer, Offer)
    capped = offer.model_copy(
        update={"eligibility": offer.eligibility.model_copy(update={"max_utilization": 0.9})}
    )
    assert (
        rule(check_offer(capped, UserFacts(), [], [], max_utilization=0.95), "max_utilization")["passed"]
        is False
    )
    assert (
        rule(check_offer(capped, UserFacts(), [], [], max_utilization=0.5), "max_utilization")["passed"]
        is True
    )
