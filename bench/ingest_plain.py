"""The plain per-user reading of bench/ingest.py: what a developer would write in an afternoon without
SpendSense, to compare ``spendsense analyze`` with.

One ``json.loads`` per user (JSON Lines), then plain Python loops over the user's dicts computing roughly
the SPEC §4 signals for the 30- and 180-day windows — card utilization, interest, minimum-payment-only
and overdue flags; recurring merchants (3+ charges at weekly or monthly gaps) and their monthly spend;
savings net inflow and growth; pay-cheque gaps, frequency and variability; cash-flow buffer; income,
spending and overdraft fees — and a persona by the first matching rule; every report written as JSON.
It validates nothing and ignores Plaid bodies, CSV and currencies: it is a floor, not an alternative.

    .venv/bin/python bench/ingest_plain.py users.jsonl > reports.json
"""

from __future__ import annotations

import itertools
import json
import statistics
import sys
from collections import Counter, defaultdict
from datetime import date, timedelta
from typing import Any

WINDOWS = {"30d": 30, "180d": 180}
LOOKBACK = {"30d": 90, "180d": 180}
SAVINGS = {"savings", "money market", "hsa", "cd", "cash management"}
STEP = {"weekly": 7, "biweekly": 14, "monthly": 30}
PER_MONTH = {"weekly": 4.33, "biweekly": 2.17, "monthly": 1.0}
FEES = ("BANK_FEES_OVERDRAFT_FEES", "BANK_FEES_INSUFFICIENT_FUNDS")


def _cadence(days: list[date]) -> str | None:
    if len(days) < 3:
        return None
    median = statistics.median((b - a).days for a, b in itertools.pairwise(days))
    if 5 <= median <= 9:
        return "weekly"
    if 12 <= median <= 16:
        return "biweekly"
    if 26 <= median <= 35:
        return "monthly"
    return None


def _credit(user: dict[str, Any], accounts: dict[str, Any], window: list[tuple[date, Any]]) -> dict[str, Any]:
    utilization, cards = 0.0, []
    for account in accounts.values():
        if account["type"] == "credit":
            limit = account["balances"].get("limit")
            used = (account["balances"].get("current") or 0) / limit if limit else None
            cards.append({"account_id": account["account_id"], "utilization": used})
            utilization = max(utilization, used or 0.0)
    interest = sum(
        t["amount"]
        for _, t in window
        if t["personal_finance_category"]["detailed"] == "BANK_FEES_INTEREST_CHARGE"
    )
    liabilities = (user.get("liabilities") or {}).get("credit") or []
    return {
        "max_utilization": round(utilization, 4),
        "cards": cards,
        "interest_charges": round(interest, 2),
        "minimum_payment_only": any(
            c.get("last_payment_amount") is not None
            and c.get("minimum_payment_amount")
            and abs(c["last_payment_amount"] - c["minimum_payment_amount"])
            <= 0.1 * c["minimum_payment_amount"]
            for c in liabilities
        ),
        "overdue": any(c.get("is_overdue") for c in liabilities),
    }


def _subscriptions(
    txs: list[tuple[date, Any]], look: date, as_of: date, monthly_spending: float
) -> dict[str, Any]:
    """Outflows grouped by merchant over the lookback; 3+ charges at a regular gap make a stream."""
    by_merchant: dict[str, list[tuple[date, float]]] = defaultdict(list)
    for d, t in txs:
        if look <= d <= as_of and t["amount"] > 0:
            key = t.get("merchant_entity_id") or t.get("merchant_name") or t["name"]
            by_merchant[key].append((d, t["amount"]))
    recurring, streams, monthly_spend = [], [], 0.0
    for merchant, charges in by_merchant.items():
        charges.sort()
        days = [d for d, _ in charges]
        cadence = _cadence(days)
        if cadence is None:
            continue
        amounts = [a for _, a in charges]
        typical, mean = statistics.median(amounts), statistics.mean(amounts)
        cv = statistics.pstdev(amounts) / mean if mean else 0.0
        streams.append(
            {
                "merchant_name": merchant,
                "frequency": cadence,
                "first_date": days[0].isoformat(),
                "last_date": days[-1].isoformat(),
                "predicted_next_date": (days[-1] + timedelta(days=STEP[cadence])).isoformat(),
                "average_amount": round(mean, 2),
                "last_amount": round(amounts[-1], 2),
                "typical_amount": round(typical, 2),
                "price_change": abs(amounts[-1] - amounts[0]) > 0.05 * amounts[0],
                "is_active": (as_of - days[-1]).days <= STEP[cadence] * 1.5,
                "count": len(charges),
                "amount_cv": round(cv, 4),
            }
        )
        if cv <= 0.25:
            per_month = typical * PER_MONTH[cadence]
            recurring.append(
                {"merchant": merchant, "cadence": cadence, "monthly_amount": round(per_month, 2)}
            )
            monthly_spend += per_month
    return {
        "recurring_merchants": recurring,
        "recurring_merchant_count": len(recurring),
        "monthly_recurring_spend": round(monthly_spend, 2),
        "subscription_share": round(monthly_spend / monthly_spending, 4) if monthly_spending else None,
        "streams": streams,
    }


def _window(user: dict[str, Any], txs: list[tuple[date, Any]], as_of: date, name: str) -> dict[str, Any]:
    start = as_of - timedelta(days=WINDOWS[name] - 1)
    accounts = {a["account_id"]: a for a in user.get("accounts") or []}
    window = [(d, t) for d, t in txs if start <= d <= as_of]
    months = WINDOWS[name] / 30.4

    paydays, pay, income, spending, fees = [], [], 0.0, 0.0, 0
    categories: Counter[str] = Counter()
    for d, t in window:
        primary = t["personal_finance_category"]["primary"]
        if primary == "INCOME" and t["amount"] < 0:
            paydays.append(d)
            pay.append(-t["amount"])
            income -= t["amount"]
        elif t["amount"] > 0 and primary not in ("TRANSFER_OUT", "LOAN_PAYMENTS"):
            spending += t["amount"]
            categories[primary] += t["amount"]
        if t["personal_finance_category"]["detailed"] in FEES:
            fees += 1
    paydays.sort()
    gaps = [(b - a).days for a, b in itertools.pairwise(paydays)]
    monthly_spending = spending / months
    checking = sum(
        a["balances"].get("current") or 0 for a in accounts.values() if a.get("subtype") == "checking"
    )
    savings_ids = {i for i, a in accounts.items() if a.get("subtype") in SAVINGS}
    savings_balance = sum(accounts[i]["balances"].get("current") or 0 for i in savings_ids)
    net_inflow = -sum(t["amount"] for _, t in window if t["account_id"] in savings_ids)
    start_balance = savings_balance - net_inflow
    look = as_of - timedelta(days=LOOKBACK[name] - 1)
    signals = {
        "credit": _credit(user, accounts, window),
        "subscriptions": _subscriptions(txs, look, as_of, monthly_spending),
        "savings": {
            "net_inflow": round(net_inflow, 2),
            "net_inflow_monthly": round(net_inflow / months, 2),
            "growth_rate": round(net_inflow / start_balance, 4) if start_balance > 0 else None,
            "emergency_fund_months": round(savings_balance / monthly_spending, 2) if spending else None,
        },
        "income": {
            "pay_frequency": _cadence(paydays),
            "median_pay_gap_days": statistics.median(gaps) if gaps else None,
            "cash_flow_buffer_months": round(checking / monthly_spending, 2) if spending else None,
            "income_total": round(income, 2),
            "variability": round(statistics.pstdev(pay) / statistics.mean(pay), 4) if len(pay) > 1 else None,
        },
        "cash_flow": {
            "income": round(income, 2),
            "spending": round(spending, 2),
            "overdraft_fee_count": fees,
            "top_categories": [[c, round(a, 2)] for c, a in categories.most_common(5)],
        },
    }
    matched = _personas(signals)
    return {"persona": {"primary": matched[0], "matched": matched}, "signals": signals}


def _personas(s: dict[str, Any]) -> list[str]:
    """Every persona whose rule matches, in priority order (the first is the primary)."""
    out = []
    if s["credit"]["max_utilization"] >= 0.5 or s["credit"]["interest_charges"] > 0 or s["credit"]["overdue"]:
        out.append("high_utilization")
    gap, buffer = s["income"]["median_pay_gap_days"], s["income"]["cash_flow_buffer_months"]
    if gap is not None and gap > 45 and buffer is not None and buffer < 1:
        out.append("variable_income_budgeter")
    if s["cash_flow"]["spending"] > s["cash_flow"]["income"] or s["cash_flow"]["overdraft_fee_count"]:
        out.append("cash_flow_balancer")
    if s["subscriptions"]["recurring_merchant_count"] >= 3:
        out.append("subscription_heavy")
    if s["savings"]["net_inflow_monthly"] >= 200:
        out.append("savings_builder")
    out.append("general_wellness")
    return out


def analyze_user(user: dict[str, Any]) -> dict[str, Any]:
    accounts = {a["account_id"]: a for a in user.get("accounts") or []}
    txs = [
        (date.fromisoformat(t["date"]), t)
        for t in user.get("transactions") or []
        if not t["pending"] and accounts.get(t["account_id"], {}).get("holder_category") != "business"
    ]
    as_of = max((d for d, _ in txs), default=date.today())
    windows = {name: _window(user, txs, as_of, name) for name in WINDOWS}
    return {"user_id": user["user_id"], "as_of": as_of.isoformat(), "windows": windows}


def main(path: str) -> None:
    reports = []
    with open(path, "rb") as lines:
        for line in lines:
            if line.strip():
                reports.append(analyze_user(json.loads(line)))
    sys.stdout.write(json.dumps(reports) + "\n")


if __name__ == "__main__":
    main(sys.argv[1])
