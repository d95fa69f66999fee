"""Fixtures for the recommender's pure core.

``real_users``: analysis reports produced by the features service's code over synthetic users (three
per persona, see ``data/make_reports.py``), with their accounts. ``hand_report``: a small report built
by hand with known figures, for exact assertions.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from spendsense_recommender.domain.catalog import Catalog, load_catalog
from spendsense_shared.testing.fakes import load_beside

DATA = Path(__file__).with_name("data") / "reports.json"
Json = dict[str, Any]


@pytest.fixture(scope="session")
def real_users() -> Json:
    """{"rule_set_version", "users": {persona: [{"report", "accounts"}, ...]}} (do not mutate)."""
    return dict(json.loads(DATA.read_text()))


@pytest.fixture(scope="session")
def catalog() -> Catalog:
    return load_catalog()


def _signals(**overrides: Json) -> Json:
    signals: Json = {
        "credit": {
            "max_utilization": 0.68,
            "card_count": 1,
            "flag_30": True,
            "flag_50": True,
            "flag_80": False,
            "interest_charges": 187.42,
            "minimum_payment_only": False,
            "overdue": False,
            "cards": [
                {
                    "account_id": "acc-secret-visa-001",
                    "name": "Visa Signature",
                    "mask": "4523",
                    "balance": 3400.0,
                    "limit": 5000.0,
                    "utilization": 0.68,
                    "flags": ["30", "50"],
                    "minimum_payment_only": False,
                    "overdue": False,
                    "interest_charges": 187.42,
                    "apr": 24.99,
                    "minimum_payment": 102.0,
                }
            ],
        },
        "subscriptions": {
            "recurring_merchant_count": 3,
            "monthly_recurring_spend": 61.97,
            "subscription_share": 0.031,
            "recurring_merchants": [
                {
                    "merchant": "Netflix",
                    "cadence": "monthly",
                    "typical_amount": 15.49,
                    "monthly_amount": 15.49,
                    "last_date": "2026-10-12",
                    "price_change": None,
                },
                {
                    "merchant": "Spotify",
                    "cadence": "monthly",
                    "typical_amount": 11.99,
                    "monthly_amount": 11.99,
                    "last_date": "2026-10-20",
                    "price_change": {"from": 10.99, "to": 11.99, "date": "2026-08-20"},
                },
                {
                    "merchant": "Planet Fitness",
                    "cadence": "monthly",
                    "typical_amount": 34.49,
                    "monthly_amount": 34.49,
                    "last_date": "2026-10-03",
                    "price_change": None,
                },
            ],
        },
        "savings": {
            "balance": 1200.0,
            "net_inflow": 0.0,
            "net_inflow_monthly": 0.0,
            "growth_rate": 0.0,
            "emergency_fund_months": 0.4,
        },
        "income": {
            "pay_frequency": "biweekly",
            "pay_count": 13.0,
            "median_pay_gap_days": 14.0,
            "cash_flow_buffer_months": 0.6,
            "checking_balance": 1850.0,
            "income_total": 27400.0,
            "variability": 0.02,
        },
        "cash_flow": {
            "income": 27400.0,
            "spending": 26100.0,
            "monthly_spending": 4350.0,
            "net": 1300.0,
            "overdraft_fee_count": 0,
        },
    }
    for group, values in overrides.items():
        signals[group] = {**signals[group], **values}
    return signals


def make_report(
    primary: str = "high_utilization",
    matched: list[Json] | None = None,
    user_id: str = "u-hand-1",
    as_of: str = "2026-10-31",
    windows: tuple[str, ...] = ("30d", "180d"),
    **signal_overrides: Json,
) -> Json:
    if matched is None:
        matched = [] if primary == "general_wellness" else [{"id": primary, "criteria": ["hand_built"]}]
    window = {"persona": {"primary": primary, "matched": matched}, "signals": _signals(**signal_overrides)}
    return {"user_id": user_id, "as_of": as_of, "windows": {w: copy.deepcopy(window) for w in windows}}


@pytest.fixture
def hand_report() -> Callable[..., Json]:
    """``hand_report(primary=..., matched=[...], credit={...overrides})`` → a report with known figures
    (a Visa Signature ending in 4523 at 68 %: $3,400 of a $5,000 limit, $187.42 interest, …)."""
    return make_report


# --- Handler unit tests: the in-memory unit of work and data bucket -------------------------------------


fakes = load_beside(__file__, "fakes.py", "spendsense_recommender_unit_fakes")


@pytest.fixture
def uow() -> Any:
    """A fresh ``FakeRecommenderUnitOfWork``."""
    return fakes.FakeRecommenderUnitOfWork()
