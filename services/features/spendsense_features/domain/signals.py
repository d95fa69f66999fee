"""Behavioural signals per (user, window), computed for many users at once (SPEC §4).

Every step works on flat arrays with integer user codes (:mod:`.context`): ``bincount`` for sums and
counts, one sort for the recurring detector and one for pay-cheque gaps. Python objects are only
built for the list-valued output columns (cards, recurring merchants, streams, top categories).

Conventions: Plaid sign (positive amount = money out); a window of N days ends at the user's as-of
date and covers the N calendar days up to and including it; ratios are fractions (0.68, not 68);
money is rounded to cents.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from typing import Any

import numpy as np
import pandas as pd

from . import classify as cls
from .context import Context, Rows, prepare
from .credit import cards, credit_signals
from .dataset import Dataset
from .recurring import BANDS, BIWEEKLY_MAX_MEAN_GAP, EventTable, group_median, group_sum
from .subscriptions import DAYS_PER_MONTH, stream_events, subscription_signals

__all__ = [
    "COLUMNS",
    "DAYS_PER_MONTH",
    "SIGNAL_SCHEMA",
    "SUBSCRIPTION_LOOKBACK",
    "WINDOWS",
    "compute_signals",
]

WINDOWS: dict[str, int] = {"30d": 30, "180d": 180}
# Recurring detection needs history: three monthly charges do not fit in 30 days.
SUBSCRIPTION_LOOKBACK: dict[str, int] = {"30d": 90, "180d": 180}
PAY_GAP_MIN_LOOKBACK = 90
TOP_CATEGORIES = 5
_EPS = 1e-9

# Every scalar signal a persona rule may reference, with its type.
SIGNAL_SCHEMA: dict[str, str] = {
    "window_days": "number",
    "credit.max_utilization": "number",
    "credit.card_count": "number",
    "credit.flag_30": "bool",
    "credit.flag_50": "bool",
    "credit.flag_80": "bool",
    "credit.interest_charges": "number",
    "credit.minimum_payment_only": "bool",
    "credit.overdue": "bool",
    "subscriptions.recurring_merchant_count": "number",
    "subscriptions.monthly_recurring_spend": "number",
    "subscriptions.subscription_share": "number",
    "savings.balance": "number",
    "savings.net_inflow": "number",
    "savings.net_inflow_monthly": "number",
    "savings.growth_rate": "number",
    "savings.emergency_fund_months": "number",
    "income.pay_frequency": "string",
    "income.pay_count": "number",
    "income.median_pay_gap_days": "number",
    "income.cash_flow_buffer_months": "number",
    "income.checking_balance": "number",
    "income.income_total": "number",
    "income.variability": "number",
    "cash_flow.income": "number",
    "cash_flow.spending": "number",
    "cash_flow.monthly_spending": "number",
    "cash_flow.net": "number",
    "cash_flow.overdraft_fee_count": "number",
}
_LIST_SIGNALS = (
    "credit.cards",
    "subscriptions.recurring_merchants",
    "subscriptions.streams",
    "cash_flow.top_categories",
)
COLUMNS: tuple[str, ...] = ("user_id", "window", "as_of", "window_start", *SIGNAL_SCHEMA, *_LIST_SIGNALS)


@dataclass
class _Classes:
    """The transaction classes the window signals sum over, cut out once."""

    spend: Rows
    spend_category: np.ndarray
    income: Rows
    payroll: Rows
    savings: Rows
    overdraft: Rows

    @classmethod
    def of(cls_, ctx: Context) -> _Classes:
        acc = ctx.accounts
        # Spending: outflows from depository and credit accounts, less transfers between own accounts,
        # card and loan payments, and income (SPEC §4).
        on_spend_account = acc.is_dep[ctx.acct] | acc.is_credit[ctx.acct]
        excluded = ctx.cat.has(cls.TRANSFER | cls.LOAN_PAYMENT | cls.INCOME)
        spend = ctx.rows((ctx.amount > 0) & on_spend_account & ~excluded)
        return cls_(
            spend=spend,
            spend_category=ctx.cat.primary_codes[spend.index],
            income=ctx.rows(ctx.income),
            payroll=ctx.rows(ctx.payroll),
            savings=ctx.rows(acc.is_savings[ctx.acct]),
            overdraft=ctx.rows(ctx.cat.has(cls.OVERDRAFT) & (ctx.amount > 0)),
        )


def _ratio(numerator: np.ndarray, denominator: np.ndarray) -> np.ndarray:
    """numerator / denominator, null where the denominator is not positive."""
    safe = np.where(denominator > _EPS, denominator, 1.0)
    return np.where(denominator > _EPS, numerator / safe, np.nan)


def _money(values: np.ndarray) -> np.ndarray:
    # Cent rounding removes float noise from sums (0.1 + 0.2) without changing any real amount.
    return np.round(values, 2) + 0.0


# --------------------------------------------------------------------------------------------------
# Cash flow, savings, income


def _cash_flow(ctx: Context, c: _Classes, window: int) -> dict[str, Any]:
    n = ctx.n_users
    in_window = c.spend.within(window)
    spending = c.spend.total(n, in_window)
    income = -c.income.total(n, c.income.within(window))
    return {
        "cash_flow.income": _money(income),
        "cash_flow.spending": _money(spending),
        "cash_flow.monthly_spending": _money(spending / (window / DAYS_PER_MONTH)),
        "cash_flow.net": _money(income - spending),
        "cash_flow.overdraft_fee_count": c.overdraft.total(n, c.overdraft.within(window), count=True),
        "cash_flow.top_categories": _top_categories(ctx, c, in_window),
    }


def _top_categories(ctx: Context, c: _Classes, in_window: np.ndarray) -> list[list[dict[str, Any]]]:
    names = np.append(ctx.category_names.astype(str), "UNCATEGORIZED")
    n_cat = len(names)
    category = c.spend_category[in_window]
    category = np.where(category >= 0, category, n_cat - 1)
    totals = group_sum(
        c.spend.user[in_window] * n_cat + category, c.spend.amount[in_window], ctx.n_users * n_cat
    ).reshape(ctx.n_users, n_cat)
    top = np.argsort(-totals, axis=1, kind="stable")[:, :TOP_CATEGORIES]
    values = np.round(np.take_along_axis(totals, top, axis=1), 2).tolist()
    labels = names[top].tolist()
    return [
        [{"category": label, "amount": v} for label, v in zip(row_labels, row_values, strict=True) if v > 0]
        for row_labels, row_values in zip(labels, values, strict=True)
    ]


def _savings(ctx: Context, c: _Classes, window: int, monthly_spending: np.ndarray) -> dict[str, Any]:
    n, acc, s = ctx.n_users, ctx.accounts, c.savings
    # Plaid sign: money into the account is negative, so net inflow is minus the sum.
    net = -s.total(n, s.within(window))
    since_start = -s.total(n, s.rel < window)  # everything since the window start, after as-of too
    balance = group_sum(acc.user[acc.is_savings], acc.balance[acc.is_savings], n)
    has_savings = np.bincount(acc.user[acc.is_savings], minlength=n) > 0
    start = balance - since_start  # the current balance already includes everything since the start
    growth = np.where(has_savings & (start > _EPS), net / np.where(start > _EPS, start, 1.0), np.nan)
    return {
        "savings.balance": _money(balance),
        "savings.net_inflow": _money(net),
        "savings.net_inflow_monthly": _money(net / (window / DAYS_PER_MONTH)),
        "savings.growth_rate": growth,
        "savings.emergency_fund_months": _ratio(balance, monthly_spending),
    }


def _income(ctx: Context, c: _Classes, window: int, monthly_spending: np.ndarray) -> dict[str, Any]:
    n, acc, pay = ctx.n_users, ctx.accounts, c.payroll
    # pay gaps need history: the 30-day window looks at (at least) the trailing 90 days
    stats = _pay_stats(ctx, pay, pay.within(max(window, PAY_GAP_MIN_LOOKBACK)))
    checking = group_sum(acc.user[acc.is_checking], acc.balance[acc.is_checking], n)
    return {
        "income.pay_frequency": stats["frequency"],
        "income.pay_count": stats["count"],
        "income.median_pay_gap_days": stats["median_gap"],
        "income.variability": stats["variability"],
        "income.income_total": _money(-pay.total(n, pay.within(window))),
        "income.checking_balance": _money(checking),
        "income.cash_flow_buffer_months": _ratio(checking, monthly_spending),
    }


def _pay_stats(ctx: Context, pay: Rows, mask: np.ndarray) -> dict[str, Any]:
    """Pay frequency, median gap and variability from pay days (same-day deposits are one pay)."""
    n = ctx.n_users
    user, day, amount = pay.user[mask], ctx.day[pay.index[mask]], -pay.amount[mask]
    order = np.lexsort((day, user))
    user, day, amount = user[order], day[order], amount[order]
    new = np.ones(user.size, dtype=bool)
    new[1:] = (user[1:] != user[:-1]) | (day[1:] != day[:-1])
    starts = np.flatnonzero(new)
    pay_user, pay_day = user[starts], day[starts]
    cheque = np.add.reduceat(amount, starts) if starts.size else np.zeros(0)
    count = np.bincount(pay_user, minlength=n)
    follows = pay_user[1:] == pay_user[:-1]
    gap, gap_user = (pay_day[1:] - pay_day[:-1])[follows], pay_user[1:][follows]
    mean_gap = np.bincount(gap_user, weights=gap, minlength=n) / np.maximum(count - 1, 1)

    def every_gap(band: tuple[int, int]) -> np.ndarray:
        return np.bincount(gap_user[(gap < band[0]) | (gap > band[1])], minlength=n) == 0

    weekly, biweekly, semi, monthly = (every_gap(band) for band in BANDS)
    frequency = np.select(
        [count == 0, count == 1, weekly, biweekly & (mean_gap < BIWEEKLY_MAX_MEAN_GAP), semi, monthly],
        ["none", "irregular", "weekly", "biweekly", "semi_monthly", "monthly"],
        default="irregular",
    ).astype(object)
    mean = np.bincount(pay_user, weights=cheque, minlength=n) / np.maximum(count, 1)
    square = np.bincount(pay_user, weights=cheque * cheque, minlength=n) / np.maximum(count, 1)
    std = np.sqrt(np.maximum(square - mean * mean, 0.0))
    return {
        "frequency": frequency,
        "count": count.astype(float),
        "median_gap": group_median(gap_user, gap.astype(float), n),
        # coefficient of variation of pay amounts (population std / mean)
        "variability": np.where((count >= 2) & (mean > 0), std / np.where(mean > 0, mean, 1.0), np.nan),
    }


# --------------------------------------------------------------------------------------------------
# Assembly


def compute_signals(data: Dataset, as_of: date | Mapping[str, date] | None = None) -> pd.DataFrame:
    """Signals for every user in ``data``: one row per (user_id, window), windows ``30d`` and ``180d``.

    ``as_of`` pins the window end (one date for everyone, or per user id); by default it is each
    user's latest posted transaction date, so results never depend on today's date. Pending
    transactions, business accounts and transactions on unknown accounts are ignored.
    Columns: :data:`COLUMNS`; scalar signals and their types: :data:`SIGNAL_SCHEMA`.
    """
    ctx = prepare(data, as_of)
    classes = _Classes.of(ctx)
    card_data = cards(ctx, data.credit_liabilities)
    events = stream_events(ctx, data, max(SUBSCRIPTION_LOOKBACK.values()))
    frames = [
        _window_frame(ctx, data, classes, card_data, events, name, days) for name, days in WINDOWS.items()
    ]
    out = pd.concat(frames, ignore_index=True)
    # user-major order: (u0, 30d), (u0, 180d), (u1, 30d), ...
    order = np.argsort(np.concatenate([np.arange(ctx.n_users)] * len(frames)), kind="stable")
    return out.iloc[order].reset_index(drop=True)


def _window_frame(
    ctx: Context,
    data: Dataset,
    classes: _Classes,
    card_data: Any,
    events: EventTable,
    name: str,
    days: int,
) -> pd.DataFrame:
    cash = _cash_flow(ctx, classes, days)
    spending = cash["cash_flow.spending"]
    monthly_spending = spending / (days / DAYS_PER_MONTH)
    columns: dict[str, Any] = {
        "user_id": ctx.users,
        "window": name,
        "as_of": _dates(ctx.as_of, ctx.has_as_of),
        "window_start": _dates(ctx.as_of - days + 1, ctx.has_as_of),
        "window_days": float(days),
        **credit_signals(ctx, card_data, days),
        **subscription_signals(ctx, data, events, SUBSCRIPTION_LOOKBACK[name], days, spending),
        **_savings(ctx, classes, days, monthly_spending),
        **_income(ctx, classes, days, monthly_spending),
        **cash,
    }
    return pd.DataFrame({key: columns[key] for key in COLUMNS})


def _dates(day_numbers: np.ndarray, known: np.ndarray) -> list[date | None]:
    values = day_numbers.astype("datetime64[D]").astype(object)
    return [v if k else None for v, k in zip(values.tolist(), known.tolist(), strict=True)]
