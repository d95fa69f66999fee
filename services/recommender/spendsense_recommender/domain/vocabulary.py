"""Names shared by the catalog, selection and text checks: persona ids, signal tags, versions, disclosure.

The recommender does not import the features service (separate container): persona ids are the public
ids of SPEC §5 and are repeated here; an unknown id in the catalog or in a report is an error.
"""

from __future__ import annotations

from typing import Final

from spendsense_shared.guardrails import DISCLOSURE as STANDARD_DISCLOSURE

DISCLOSURE: Final = STANDARD_DISCLOSURE  # one text, checked by the shared guardrails

# Bumped whenever the signal-tag thresholds or scoring weights in selection change, so that replaying an
# old trace with new code is reported as a version mismatch instead of a silent difference.
# v2: untrusted names shown through the shared sanitizer; grounding reads number words; contacts check.
SELECTION_VERSION: Final = "selection-v2"
TRACE_SCHEMA: Final = "trace-v2"  # v2: "citable" and "alternatives"

GENERAL_WELLNESS: Final = "general_wellness"
# SPEC §5, in priority order; general_wellness is the no-match fallback.
PERSONA_NAMES: Final[dict[str, str]] = {
    "high_utilization": "High Utilization",
    "variable_income_budgeter": "Variable Income Budgeter",
    "cash_flow_balancer": "Cash-Flow Balancer",
    "subscription_heavy": "Subscription-Heavy",
    "savings_builder": "Savings Builder",
    GENERAL_WELLNESS: "General Wellness",
}
PERSONA_IDS: Final = frozenset(PERSONA_NAMES)

# Signal tags: named conditions over one window's signals (computed in domain.signals). Catalog items
# and offers are tagged with them; the descriptions are shown in traces and docs.
SIGNAL_TAGS: Final[dict[str, str]] = {
    "card_utilization_high": "a card at or above 50 % utilization",
    "card_utilization_elevated": "a card at or above 30 % utilization",
    "interest_charges": "card interest charged in the window",
    "minimum_payment_only": "paying only the minimum on a card",
    "card_overdue": "a card payment overdue",
    "has_credit_card": "at least one credit card",
    "no_credit_card": "no credit card",
    "irregular_income": "irregular pay or a median pay gap over 45 days",
    "low_cash_buffer": "checking covers less than one month of spending",
    "spending_exceeds_income": "spending at least 5 % above income",
    "overdraft_fees": "an overdraft or insufficient-funds fee in the window",
    "many_subscriptions": "three or more recurring merchants",
    "subscription_price_change": "a recurring charge changed price",
    "savings_growing": "savings growing by 2 % or $200 a month",
    "low_emergency_fund": "savings cover less than three months of spending",
    "no_savings": "no savings balance",
}

# Products a user can already hold (derived from account types, subtypes and names) and product types
# an offer can be for. "No offer for a product the user already has" compares these.
PRODUCT_TYPES: Final = frozenset(
    {
        "checking",
        "checking_no_overdraft",
        "savings",
        "high_yield_savings",
        "money_market",
        "certificate_of_deposit",
        "hsa",
        "cash_management",
        "credit_card",
        "balance_transfer_card",
        "secured_credit_card",
        "personal_loan",
        "credit_builder_loan",
        "student_loan",
        "auto_loan",
        "mortgage",
        "investment",
        "budgeting_app",
        "debt_payoff_app",
        "subscription_manager",
        "bill_negotiation_service",
        "automated_savings_app",
    }
)
