"""Signal tags: named, thresholded conditions over the snapshot's window signals.

Catalog items are tagged with these names, so the thresholds live in one place (versioned by
``SELECTION_VERSION``). Each active tag carries its evidence (signal, value, comparison, threshold) for
the decision trace. The thresholds follow SPEC §4 and §5 where the spec names one.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from .snapshot import UserSnapshot, WindowSignals

__all__ = ["derive_signal_tags"]

Evidence = dict[str, Any]
_Rule = Callable[[WindowSignals], Evidence | None]


def _cmp(signal: str, value: Any, op: str, threshold: Any) -> Evidence | None:
    """Evidence when ``value <op> threshold`` holds (a missing value never holds)."""
    if value is None:
        return None
    holds = {
        ">=": lambda: value >= threshold,
        ">": lambda: value > threshold,
        "<": lambda: value < threshold,
        "<=": lambda: value <= threshold,
        "==": lambda: value == threshold,
    }[op]()
    return {"signal": signal, "value": value, "op": op, "threshold": threshold} if holds else None


def _max_util(s: WindowSignals) -> float | None:
    values = [c.utilization for c in s.credit.cards if c.utilization is not None]
    if s.credit.max_utilization is not None:
        values.append(s.credit.max_utilization)
    return max(values) if values else None


def _card_count(s: WindowSignals) -> int:
    return max(s.credit.card_count or 0, len(s.credit.cards))


def _irregular(s: WindowSignals) -> Evidence | None:
    if s.income.pay_frequency == "irregular":
        return {"signal": "income.pay_frequency", "value": "irregular", "op": "==", "threshold": "irregular"}
    return _cmp("income.median_pay_gap_days", s.income.median_pay_gap_days, ">", 45)


def _overspending(s: WindowSignals) -> Evidence | None:
    spending, income = s.cash_flow.spending, s.cash_flow.income
    if spending is None or income is None or spending <= 0 or spending < 1.05 * income:
        return None
    return {
        "signal": "cash_flow.spending",
        "value": spending,
        "op": ">=",
        "threshold": round(1.05 * income, 2),
    }


def _savings_growing(s: WindowSignals) -> Evidence | None:
    return _cmp("savings.growth_rate", s.savings.growth_rate, ">=", 0.02) or _cmp(
        "savings.net_inflow_monthly", s.savings.net_inflow_monthly, ">=", 200
    )


def _price_change(s: WindowSignals) -> Evidence | None:
    changed = [m.merchant for m in s.subscriptions.recurring_merchants if m.price_change is not None]
    if not changed:
        return None
    return {
        "signal": "subscriptions.recurring_merchants.price_change",
        "value": len(changed),
        "op": ">=",
        "threshold": 1,
    }


_RULES: dict[str, _Rule] = {
    "card_utilization_high": lambda s: _cmp("credit.max_utilization", _max_util(s), ">=", 0.5),
    "card_utilization_elevated": lambda s: _cmp("credit.max_utilization", _max_util(s), ">=", 0.3),
    "interest_charges": lambda s: _cmp("credit.interest_charges", s.credit.interest_charges, ">", 0),
    "minimum_payment_only": lambda s: _cmp(
        "credit.minimum_payment_only", s.credit.minimum_payment_only, "==", True
    ),
    "card_overdue": lambda s: _cmp("credit.overdue", s.credit.overdue, "==", True),
    "has_credit_card": lambda s: _cmp("credit.card_count", _card_count(s), ">=", 1),
    "no_credit_card": lambda s: _cmp("credit.card_count", _card_count(s), "==", 0),
    "irregular_income": _irregular,
    "low_cash_buffer": lambda s: _cmp(
        "income.cash_flow_buffer_months", s.income.cash_flow_buffer_months, "<", 1
    ),
    "spending_exceeds_income": _overspending,
    "overdraft_fees": lambda s: _cmp(
        "cash_flow.overdraft_fee_count", s.cash_flow.overdraft_fee_count, ">=", 1
    ),
    "many_subscriptions": lambda s: _cmp(
        "subscriptions.recurring_merchant_count", s.subscriptions.recurring_merchant_count, ">=", 3
    ),
    "subscription_price_change": _price_change,
    "savings_growing": _savings_growing,
    "low_emergency_fund": lambda s: _cmp(
        "savings.emergency_fund_months", s.savings.emergency_fund_months, "<", 3
    ),
    "no_savings": lambda s: _cmp("savings.balance", s.savings.balance or 0.0, "<=", 0),
}


def derive_signal_tags(snapshot: UserSnapshot) -> dict[str, Evidence]:
    """Every active tag with its evidence, in the fixed order of the vocabulary."""
    active: dict[str, Evidence] = {}
    for tag, rule in _RULES.items():
        evidence = rule(snapshot.signals)
        if evidence is not None:
            active[tag] = evidence
    return active
