"""Offer eligibility (SPEC §6): the user facts it needs, and one recorded check per rule.

``UserFacts`` is the input the service assembles per user: an annual income estimate (from the income
signals, see ``estimate_annual_income``), a credit score when one is known (unknown → not eligible for
an offer that requires one), the products the user already holds (from account type, subtype and
name, see ``products_from_accounts``) and the user's active persona/signal context. Every rule of an
offer yields an ``EligibilityCheck`` (rule, value, threshold, passed), stored in the decision trace.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from .catalog import APR_CAP, PREDATORY_PRODUCTS, Offer
from .snapshot import ReportLike, UserSnapshot, as_snapshot

__all__ = [
    "AccountInfo",
    "EligibilityCheck",
    "UserFacts",
    "check_offer",
    "estimate_annual_income",
    "products_from_accounts",
    "user_facts_from_report",
]

DAYS_PER_YEAR = 365.25


class EligibilityCheck(BaseModel):
    model_config = ConfigDict(frozen=True)

    rule: str
    value: Any
    threshold: Any
    passed: bool


class AccountInfo(BaseModel):
    """What product derivation needs from an account (Plaid field names; extra fields ignored)."""

    model_config = ConfigDict(extra="ignore", frozen=True)

    type: str | None = None
    subtype: str | None = None
    name: str | None = None
    official_name: str | None = None
    holder_category: str | None = None


class UserFacts(BaseModel):
    """Per-user facts for offer eligibility."""

    model_config = ConfigDict(frozen=True)

    annual_income: float | None = Field(
        None, ge=0, description="estimated from income signals; None = unknown"
    )
    credit_score: int | None = Field(
        None, ge=300, le=850, description="None = unknown: offers requiring one fail"
    )
    products: frozenset[str] = frozenset()

    @classmethod
    def derive(
        cls,
        snapshot: UserSnapshot,
        accounts: Iterable[AccountInfo | BaseModel | Mapping[str, Any]] = (),
        credit_score: int | None = None,
    ) -> UserFacts:
        infos = [_account_info(a) for a in accounts]
        return cls(
            annual_income=estimate_annual_income(snapshot),
            credit_score=credit_score,
            products=products_from_accounts(infos),
        )


def _account_info(account: AccountInfo | BaseModel | Mapping[str, Any]) -> AccountInfo:
    if isinstance(account, AccountInfo):
        return account
    if isinstance(account, BaseModel):  # e.g. the event contract's AccountKind
        return AccountInfo.model_validate(account.model_dump())
    return AccountInfo.model_validate(account)


def user_facts_from_report(
    report: ReportLike,
    accounts: Iterable[AccountInfo | BaseModel | Mapping[str, Any]] = (),
    credit_score: int | None = None,
) -> UserFacts:
    """``UserFacts`` for a features analysis report plus the user's accounts (Plaid shape). A caller
    that also builds recommendations parses the report once (``snapshot_of``) and passes the snapshot."""
    return UserFacts.derive(as_snapshot(report), accounts, credit_score)


def estimate_annual_income(snapshot: UserSnapshot) -> float | None:
    """Income over the window, annualized (365.25 / window days); None when there is no income."""
    total = snapshot.signals.income.income_total or snapshot.signals.cash_flow.income
    if not total or total <= 0 or snapshot.window_days <= 0:
        return None
    return round(total * DAYS_PER_YEAR / snapshot.window_days, 2)


_SUBTYPE_PRODUCTS = {
    ("depository", "checking"): "checking",
    ("depository", "savings"): "savings",
    ("depository", "money market"): "money_market",
    ("depository", "cd"): "certificate_of_deposit",
    ("depository", "hsa"): "hsa",
    ("depository", "cash management"): "cash_management",
    ("credit", "credit card"): "credit_card",
    ("loan", "mortgage"): "mortgage",
    ("loan", "student"): "student_loan",
    ("loan", "auto"): "auto_loan",
    ("loan", "personal"): "personal_loan",
    ("loan", "consumer"): "personal_loan",
}
# Names refine the subtype: Plaid has no "high-yield" or "secured" subtype, but banks name them so.
_NAME_PRODUCTS = (
    (("depository",), ("high yield", "high-yield", "hysa"), "high_yield_savings"),
    (("credit",), ("secured",), "secured_credit_card"),
    (("credit",), ("balance transfer",), "balance_transfer_card"),
    (("loan",), ("credit builder", "credit-builder"), "credit_builder_loan"),
)


def _account_products(account: AccountInfo) -> set[str]:
    kind = (account.type or "").lower()
    products: set[str] = set()
    mapped = _SUBTYPE_PRODUCTS.get((kind, (account.subtype or "").lower()))
    if mapped:
        products.add(mapped)
    elif kind == "credit":
        products.add("credit_card")
    elif kind == "investment":
        products.add("investment")
    names = f"{account.name or ''} {account.official_name or ''}".lower()
    for kinds, words, product in _NAME_PRODUCTS:
        if kind in kinds and any(w in names for w in words):
            products.add(product)
    return products


def products_from_accounts(accounts: Iterable[AccountInfo]) -> frozenset[str]:
    """Products the user holds. Business accounts are not the user's own products (SPEC §3)."""
    held: set[str] = set()
    for account in accounts:
        if (account.holder_category or "individual").lower() != "business":
            held |= _account_products(account)
    return frozenset(held)


def _min_rule(rule: str, value: float | None, threshold: float | None) -> EligibilityCheck | None:
    if threshold is None:
        return None
    return EligibilityCheck(
        rule=rule, value=value, threshold=threshold, passed=value is not None and value >= threshold
    )


def _fit_check(offer: Offer, personas: list[str], tags: Iterable[str]) -> EligibilityCheck:
    persona_hits = sorted(set(offer.personas) & set(personas))
    signal_hits = sorted(set(offer.signals) & set(tags))
    return EligibilityCheck(
        rule="persona_signal_fit",
        value={"personas": persona_hits, "signals": signal_hits},
        threshold={"personas": list(offer.personas), "signals": list(offer.signals)},
        passed=bool(persona_hits or signal_hits),
    )


def _predatory_check(offer: Offer) -> EligibilityCheck:
    # The catalog refuses predatory offers at load; checked again here so the trace shows it held.
    apr = offer.terms.apr
    passed = offer.product_type not in PREDATORY_PRODUCTS and (apr is None or apr <= APR_CAP)
    return EligibilityCheck(
        rule="not_predatory",
        value={"product_type": offer.product_type, "apr": apr},
        threshold={"max_apr": APR_CAP},
        passed=passed,
    )


def check_offer(
    offer: Offer,
    user: UserFacts,
    personas: list[str],
    tags: Iterable[str],
    max_utilization: float | None = None,
) -> list[EligibilityCheck]:
    """Every rule of the offer, evaluated for this user (eligible when all pass)."""
    rules = offer.eligibility
    excluded = sorted({offer.product_type, *rules.excludes_products})
    checks = [
        _min_rule("min_annual_income", user.annual_income, rules.min_annual_income),
        _min_rule("min_credit_score", user.credit_score, rules.min_credit_score),
        EligibilityCheck(
            rule="not_already_held",
            value=sorted(user.products & set(excluded)),
            threshold=excluded,
            passed=not (user.products & set(excluded)),
        ),
        None
        if rules.max_utilization is None
        else EligibilityCheck(
            rule="max_utilization",
            value=max_utilization,
            threshold=rules.max_utilization,
            passed=max_utilization is not None and max_utilization <= rules.max_utilization,
        ),
        _fit_check(offer, personas, tags),
        _predatory_check(offer),
    ]
    return [c for c in checks if c is not None]
