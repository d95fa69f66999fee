"""Behavioural signals per (user, window), computed for many users at once (SPEC §4).

Every step works on flat arrays with integer user codes: ``bincount`` for sums and counts, one sort
for the recurring detector and for pay-cheque gaps. Python objects are only built for the list-valued
output columns (cards, recurring merchants, streams, top categories).

Conventions: Plaid sign (positive amount = money out); a window of N days ends at the user's as-of
date and covers the N calendar days up to and including it; ratios are fractions (0.68, not 68).
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from typing import Any

import numpy as np
import pandas as pd

from spendsense_shared.dataset import SAVINGS_SUBTYPES

from .classify import CategoryFlags, codes, merchant_keys, payroll_name_flags
from .dataset import Dataset
from .recurring import (
    BANDS,
    CADENCES,
    FREQUENCIES,
    NOMINAL_DAYS,
    EventTable,
    StreamCandidates,
    Streams,
    build_events,
    detect_streams,
    group_median,
)

__all__ = ["COLUMNS", "DAYS_PER_MONTH", "SIGNAL_SCHEMA", "WINDOWS", "compute_signals"]

WINDOWS: dict[str, int] = {"30d": 30, "180d": 180}
# Recurring detection needs history: three monthly charges do not fit in 30 days.
SUBSCRIPTION_LOOKBACK: dict[str, int] = {"30d": 90, "180d": 180}
PAY_GAP_MIN_LOOKBACK = 90
DAYS_PER_MONTH = 30.4375
UTILIZATION_FLAGS = (0.30, 0.50, 0.80)
_FLAG_LABELS = tuple((t, str(round(t * 100))) for t in UTILIZATION_FLAGS)
MIN_PAYMENT_TOLERANCE = 0.10
TOP_CATEGORIES = 5
_NO_DATE = -(10**9)  # as-of for a user without any posted transaction: every window is empty
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


# --------------------------------------------------------------------------------------------------
# Preparation: one pass over the dataset into integer-coded arrays of analyzable transactions.


@dataclass
class _Accounts:
    frame: pd.DataFrame  # analyzable (non-business) accounts, de-duplicated
    user: np.ndarray
    is_dep: np.ndarray
    is_credit: np.ndarray
    is_savings: np.ndarray
    is_checking: np.ndarray
    balance: np.ndarray  # current balance, NaN → 0


@dataclass
class _Context:
    users: np.ndarray  # user ids (object), sorted; user code = index
    as_of: np.ndarray  # int days per user (_NO_DATE when unknown)
    has_as_of: np.ndarray
    accounts: _Accounts
    # one entry per posted transaction on an analyzable account:
    pos: np.ndarray  # row position in data.transactions
    user: np.ndarray
    day: np.ndarray
    end: np.ndarray  # the user's as-of, per transaction
    amount: np.ndarray
    acct: np.ndarray  # row in accounts.frame
    on_dep: np.ndarray  # the account is a depository account
    on_credit: np.ndarray
    on_savings: np.ndarray
    cat: CategoryFlags
    payroll_name: np.ndarray
    category: np.ndarray  # primary category code (-1 = none)
    category_names: np.ndarray

    @property
    def n_users(self) -> int:
        return len(self.users)

    def per_user(self, mask: np.ndarray, weights: np.ndarray | None = None) -> np.ndarray:
        """Sum (or count, without weights) over the masked transactions, per user code."""
        w = None if weights is None else weights[mask]
        return np.bincount(self.user[mask], weights=w, minlength=self.n_users).astype(float)


def _days(values: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """Dates as int days since the epoch, plus a validity mask (one integer division, whatever the
    datetime unit)."""
    raw = values.to_numpy()
    if raw.dtype.kind != "M":
        raw = pd.to_datetime(values, errors="coerce").to_numpy()
    valid = ~np.isnat(raw)
    unit, _ = np.datetime_data(raw.dtype)
    per_day = int(np.timedelta64(1, "D").astype(f"timedelta64[{unit}]").astype(np.int64))
    return np.floor_divide(raw.view(np.int64), per_day), valid


def _user_index(data: Dataset) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Sorted user ids, and the user code of every transaction and account row (-1 = no user)."""
    tx_codes, tx_uniques = codes(data.transactions["user_id"])
    acc_codes, acc_uniques = codes(data.accounts["user_id"])
    users = np.array(sorted({str(u) for u in tx_uniques} | {str(u) for u in acc_uniques}), dtype=object)
    index = pd.Index(users)
    tx_map = np.append(index.get_indexer(tx_uniques.astype(str)), -1)
    acc_map = np.append(index.get_indexer(acc_uniques.astype(str)), -1)
    return users, tx_map[tx_codes], acc_map[acc_codes]


def _resolve_as_of(
    users: np.ndarray, tx_user: np.ndarray, day: np.ndarray, ok: np.ndarray, as_of: Any
) -> np.ndarray:
    """Per-user as-of (int days): the latest posted transaction, unless the caller pins it."""
    latest = np.full(len(users), _NO_DATE, dtype=np.int64)
    np.maximum.at(latest, tx_user[ok], day[ok])
    if as_of is None:
        return latest
    if isinstance(as_of, date):
        return np.full(len(users), _day_number(as_of), dtype=np.int64)
    pinned = pd.Index(users).get_indexer(list(as_of.keys()))
    for code, value in zip(pinned, as_of.values(), strict=True):
        if code >= 0:
            latest[code] = _day_number(value)
    return latest


def _day_number(value: date) -> int:
    return int(np.datetime64(value, "D").astype(np.int64))


def _lower(values: pd.Series) -> np.ndarray:
    """Lower-cased text, nulls as "" (works for string, object and categorical columns alike)."""
    return np.array([str(v).lower() if isinstance(v, str) else "" for v in values.tolist()], dtype=object)


def _accounts(data: Dataset, acc_user: np.ndarray) -> tuple[_Accounts, np.ndarray]:
    """Analyzable accounts and, for every account row of ``data``, its row there (-1 if excluded)."""
    frame = data.accounts
    business = _lower(frame["holder_category"]) == "business"
    keep = ~business & (acc_user >= 0)
    # the last row wins when an upload repeats an account
    dup = pd.DataFrame({"u": acc_user, "a": frame["account_id"].astype(object)}).duplicated(keep="last")
    keep &= ~dup.to_numpy()
    rows = np.flatnonzero(keep)
    kept = frame.iloc[rows].reset_index(drop=True)
    kind = _lower(kept["type"])
    subtype = _lower(kept["subtype"])
    is_savings = np.isin(subtype, list(SAVINGS_SUBTYPES)) & ~np.isin(kind, ["credit", "loan"])
    is_dep = kind == "depository"
    balance = kept["balance_current"].fillna(kept["balance_available"]).fillna(0.0).to_numpy(float)
    accounts = _Accounts(
        frame=kept,
        user=acc_user[rows],
        is_dep=is_dep,
        is_credit=kind == "credit",
        is_savings=is_savings,
        # cash-flow buffer: the transactional (non-savings) depository accounts
        is_checking=is_dep & ~is_savings,
        balance=balance,
    )
    row_of = np.full(len(frame), -1, dtype=np.int64)
    row_of[rows] = np.arange(len(rows))
    return accounts, row_of


def _transaction_accounts(
    data: Dataset, tx_user: np.ndarray, acc_user: np.ndarray, acc_row: np.ndarray
) -> np.ndarray:
    """Analyzable-account row of each transaction (-1 when unknown or excluded), matched on
    (user_id, account_id) through integer keys."""
    tx_acc_codes, tx_acc_uniques = codes(data.transactions["account_id"])
    acc_codes = pd.Index(tx_acc_uniques.astype(str)).get_indexer(
        data.accounts["account_id"].astype(object).fillna("").astype(str)
    )
    usable = (acc_codes >= 0) & (acc_row >= 0)
    known = (tx_user >= 0) & (tx_acc_codes >= 0)
    if np.unique(acc_codes[usable]).size == usable.sum():
        # Account ids are unique across users (the normal case): a direct lookup by account code,
        # then a check that the transaction's user owns that account.
        by_code = np.full(len(tx_acc_uniques) + 1, -1, dtype=np.int64)
        by_code[acc_codes[usable]] = acc_row[usable]
        found = by_code[tx_acc_codes]  # code -1 (null account id) → the trailing -1
        kept = acc_row >= 0
        owner = np.full(int(kept.sum()) + 1, -1, dtype=np.int64)
        owner[acc_row[kept]] = acc_user[kept]
        return np.where(known & (found >= 0) & (owner[found] == tx_user), found, -1)
    width = len(tx_acc_uniques) + 1
    acc_keys = acc_user[usable] * width + acc_codes[usable]
    found = pd.Index(acc_keys).get_indexer(tx_user * width + tx_acc_codes)
    out = np.where(found >= 0, acc_row[usable][found], -1)
    return np.where(known, out, -1)


def _prepare(data: Dataset, as_of: Any) -> _Context:
    tx = data.transactions
    users, tx_user, acc_user = _user_index(data)
    day, day_ok = _days(tx["date"])
    amount = tx["amount"].to_numpy(float, na_value=np.nan)
    posted = ~tx["pending"].to_numpy(bool) & day_ok & (tx_user >= 0)
    as_of_days = _resolve_as_of(users, tx_user, day, posted, as_of)
    accounts, acc_row = _accounts(data, acc_user)
    tx_acct = _transaction_accounts(data, tx_user, acc_user, acc_row)
    pos = np.flatnonzero(posted & (tx_acct >= 0) & ~np.isnan(amount))

    cat = CategoryFlags(tx["category_primary"], tx["category_detailed"], tx["category_detailed_raw"], pos)
    user, acct, amt = tx_user[pos], tx_acct[pos], amount[pos]
    # Payroll-by-description only matters for money into depository accounts: scan just those names.
    on_dep = accounts.is_dep[acct]
    inflow_dep = np.flatnonzero((amt < 0) & on_dep)
    payroll_name = np.zeros(pos.size, dtype=bool)
    payroll_name[inflow_dep] = payroll_name_flags(tx["name"].iloc[pos[inflow_dep]])
    return _Context(
        users=users,
        as_of=as_of_days,
        has_as_of=as_of_days != _NO_DATE,
        accounts=accounts,
        pos=pos,
        user=user,
        day=day[pos],
        end=as_of_days[user],
        amount=amt,
        acct=acct,
        on_dep=on_dep,
        on_credit=accounts.is_credit[acct],
        on_savings=accounts.is_savings[acct],
        cat=cat,
        payroll_name=payroll_name,
        category=cat.primary_codes,
        category_names=cat.primary_names,
    )


# --------------------------------------------------------------------------------------------------
# Transaction classes


def _spending_mask(ctx: _Context) -> np.ndarray:
    """Outflows from depository and credit accounts, less transfers between own accounts, card and
    loan payments, and income (SPEC §4)."""
    on_spend_account = ctx.on_dep | ctx.on_credit
    excluded = ctx.cat.transfer | ctx.cat.loan_payment | ctx.cat.income
    return (ctx.amount > 0) & on_spend_account & ~excluded


def _income_mask(ctx: _Context) -> np.ndarray:
    """Income inflows: money into a depository account categorized INCOME or described as payroll.
    Refunds (negative amounts on cards or under merchant categories) are not income."""
    return (ctx.amount < 0) & ctx.on_dep & (ctx.cat.income | ctx.payroll_name)


def _payroll_mask(ctx: _Context) -> np.ndarray:
    """Pay cheques: income inflows except interest, dividends and tax refunds, or payroll ACH."""
    wages = ctx.cat.income & ~ctx.cat.not_payroll
    return (ctx.amount < 0) & ctx.on_dep & (wages | ctx.payroll_name)


# --------------------------------------------------------------------------------------------------
# Per-window signal groups. Each returns columns (arrays or lists) indexed by user code.


def _cash_flow(ctx: _Context, in_window: np.ndarray, spend: np.ndarray, months: float) -> dict[str, Any]:
    spend_w = in_window & spend
    spending = ctx.per_user(spend_w, ctx.amount)
    income = -ctx.per_user(in_window & _income_mask(ctx), ctx.amount)
    overdrafts = ctx.per_user(in_window & ctx.cat.overdraft & (ctx.amount > 0))
    return {
        "cash_flow.income": _money(income),
        "cash_flow.spending": _money(spending),
        "cash_flow.monthly_spending": _money(spending / months),
        "cash_flow.net": _money(income - spending),
        "cash_flow.overdraft_fee_count": overdrafts,
        "cash_flow.top_categories": _top_categories(ctx, spend_w),
    }


def _top_categories(ctx: _Context, spend_w: np.ndarray) -> list[list[dict[str, Any]]]:
    names = np.append(ctx.category_names.astype(str), "UNCATEGORIZED")
    n_cat = len(names)
    cat = np.where(ctx.category[spend_w] >= 0, ctx.category[spend_w], n_cat - 1)
    totals = np.bincount(
        ctx.user[spend_w] * n_cat + cat, weights=ctx.amount[spend_w], minlength=ctx.n_users * n_cat
    ).reshape(ctx.n_users, n_cat)
    top = np.argsort(-totals, axis=1, kind="stable")[:, :TOP_CATEGORIES]
    values = np.round(np.take_along_axis(totals, top, axis=1), 2).tolist()
    labels = names[top].tolist()
    return [
        [{"category": c, "amount": v} for c, v in zip(row_labels, row_values, strict=True) if v > 0]
        for row_labels, row_values in zip(labels, values, strict=True)
    ]


def _savings(ctx: _Context, in_window: np.ndarray, days: int, monthly_spending: np.ndarray) -> dict[str, Any]:
    acc = ctx.accounts
    on_savings = ctx.on_savings
    # Plaid sign: money into the account is negative, so net inflow is minus the sum.
    net = -ctx.per_user(in_window & on_savings, ctx.amount)
    since_start = -ctx.per_user(on_savings & (ctx.day > ctx.end - days), ctx.amount)
    balance = np.bincount(acc.user[acc.is_savings], acc.balance[acc.is_savings], minlength=ctx.n_users)
    has_savings = np.bincount(acc.user[acc.is_savings], minlength=ctx.n_users) > 0
    start = balance - since_start  # the current balance already includes everything since the start
    growth = np.where(has_savings & (start > _EPS), net / np.where(start > _EPS, start, 1.0), np.nan)
    return {
        "savings.balance": _money(balance),
        "savings.net_inflow": _money(net),
        "savings.net_inflow_monthly": _money(net / (days / DAYS_PER_MONTH)),
        "savings.growth_rate": growth,
        "savings.emergency_fund_months": _ratio(balance, monthly_spending),
    }


def _ratio(numerator: np.ndarray, denominator: np.ndarray) -> np.ndarray:
    """numerator / denominator, null where the denominator is not positive."""
    safe = np.where(denominator > _EPS, denominator, 1.0)
    return np.where(denominator > _EPS, numerator / safe, np.nan)


def _money(values: np.ndarray) -> np.ndarray:
    # Cent rounding removes float noise from sums (0.1 + 0.2) without changing any real amount.
    return np.round(values, 2) + 0.0


def _income(ctx: _Context, in_window: np.ndarray, days: int, monthly_spending: np.ndarray) -> dict[str, Any]:
    payroll = _payroll_mask(ctx)
    lookback = max(days, PAY_GAP_MIN_LOOKBACK)
    recent = payroll & (ctx.day > ctx.end - lookback) & (ctx.day <= ctx.end)
    stats = _pay_stats(ctx, np.flatnonzero(recent))
    acc = ctx.accounts
    checking = np.bincount(acc.user[acc.is_checking], acc.balance[acc.is_checking], minlength=ctx.n_users)
    return {
        "income.pay_frequency": stats["frequency"],
        "income.pay_count": stats["count"],
        "income.median_pay_gap_days": stats["median_gap"],
        "income.variability": stats["variability"],
        "income.income_total": _money(-ctx.per_user(in_window & payroll, ctx.amount)),
        "income.checking_balance": _money(checking),
        "income.cash_flow_buffer_months": _ratio(checking, monthly_spending),
    }


def _pay_stats(ctx: _Context, rows: np.ndarray) -> dict[str, Any]:
    """Pay frequency, median gap and variability from pay days (same-day deposits are one pay)."""
    n = ctx.n_users
    order = rows[np.lexsort((ctx.day[rows], ctx.user[rows]))]
    user, day = ctx.user[order], ctx.day[order]
    new = np.ones(order.size, dtype=bool)
    new[1:] = (user[1:] != user[:-1]) | (day[1:] != day[:-1])
    starts = np.flatnonzero(new)
    pay_user, pay_day = user[starts], day[starts]
    pay = -np.add.reduceat(ctx.amount[order], starts) if starts.size else np.zeros(0)
    count = np.bincount(pay_user, minlength=n)
    follows = pay_user[1:] == pay_user[:-1]
    gap, gap_user = (pay_day[1:] - pay_day[:-1])[follows], pay_user[1:][follows]
    median_gap = group_median(gap_user, gap.astype(float), n)
    mean_gap = np.bincount(gap_user, weights=gap, minlength=n) / np.maximum(count - 1, 1)

    def every(lo: int, hi: int) -> np.ndarray:
        return np.bincount(gap_user[(gap < lo) | (gap > hi)], minlength=n) == 0

    weekly, biweekly, semi, monthly = (every(*BANDS[i]) for i in range(4))
    frequency = np.select(
        [
            count == 0,
            count == 1,
            weekly,
            biweekly & (mean_gap < 14.6),
            semi,
            monthly,
        ],
        ["none", "irregular", "weekly", "biweekly", "semi_monthly", "monthly"],
        default="irregular",
    ).astype(object)
    mean = np.bincount(pay_user, weights=pay, minlength=n) / np.maximum(count, 1)
    sq = np.bincount(pay_user, weights=pay * pay, minlength=n) / np.maximum(count, 1)
    std = np.sqrt(np.maximum(sq - mean * mean, 0.0))
    variability = np.where((count >= 2) & (mean > 0), std / np.where(mean > 0, mean, 1.0), np.nan)
    return {
        "frequency": frequency,
        "count": count.astype(float),
        "median_gap": median_gap,
        "variability": variability,
    }


# --------------------------------------------------------------------------------------------------
# Credit


@dataclass
class _Cards:
    frame: pd.DataFrame  # one row per analyzable credit account, with liabilities joined
    user: np.ndarray
    of_account: np.ndarray  # card index per analyzable account row (-1 = not a card)
    tx_card: np.ndarray  # card index per transaction (-1 = not on a card)
    utilization: np.ndarray
    minimum: np.ndarray
    balance: np.ndarray
    liability_interest: np.ndarray
    last_payment: np.ndarray
    last_payment_day: np.ndarray  # _NO_DATE when unknown
    overdue: np.ndarray


def _cards(ctx: _Context, liabilities: pd.DataFrame) -> _Cards:
    acc = ctx.accounts
    rows = np.flatnonzero(acc.is_credit)
    frame = acc.frame.iloc[rows].reset_index(drop=True)
    frame["_user"] = acc.user[rows]
    liab = liabilities.copy()
    liab["_user"] = pd.Index(ctx.users).get_indexer(liab["user_id"].astype(object).fillna("").astype(str))
    liab = liab.drop_duplicates(["_user", "account_id"], keep="last")
    frame["account_id"] = frame["account_id"].astype(object)
    liab["account_id"] = liab["account_id"].astype(object)
    frame = frame.merge(
        liab.drop(columns=["user_id"]), on=["_user", "account_id"], how="left", suffixes=("", "_liab")
    )
    balance = frame["balance_current"].fillna(0.0).to_numpy(float)
    limit = frame["balance_limit"].to_numpy(float, na_value=np.nan)
    has_limit = limit > 0
    utilization = np.where(has_limit, np.maximum(balance, 0.0) / np.where(has_limit, limit, 1.0), np.nan)
    of_account = np.full(len(acc.frame), -1, dtype=np.int64)
    of_account[rows] = np.arange(len(rows))
    last_day, last_ok = _days(frame["last_payment_date"])
    return _Cards(
        frame=frame,
        user=frame["_user"].to_numpy(np.int64),
        of_account=of_account,
        tx_card=of_account[ctx.acct],
        utilization=utilization,
        minimum=frame["minimum_payment_amount"].to_numpy(float, na_value=np.nan),
        balance=balance,
        liability_interest=frame["interest_charge_amount"].fillna(0.0).to_numpy(float),
        last_payment=frame["last_payment_amount"].to_numpy(float, na_value=np.nan),
        last_payment_day=np.where(last_ok, last_day, _NO_DATE),
        overdue=frame["is_overdue"].astype("boolean").fillna(False).to_numpy(bool),
    )


def _credit(ctx: _Context, cards: _Cards, in_window: np.ndarray, days: int) -> dict[str, Any]:
    n, n_cards = ctx.n_users, len(cards.user)
    card = cards.tx_card
    interest_tx = in_window & ctx.cat.interest_charge & (ctx.amount > 0)
    on_card = interest_tx & (card >= 0)
    card_tx_interest = np.bincount(card[on_card], ctx.amount[on_card], minlength=n_cards)
    # Interest from the card's transactions when it has any in the window, else the liabilities'
    # APR interest (the last statement), never both, so a charge is not counted twice.
    card_interest = np.where(card_tx_interest > 0, card_tx_interest, cards.liability_interest)
    interest = np.bincount(cards.user, card_interest, minlength=n) + ctx.per_user(
        interest_tx & (card < 0), ctx.amount
    )
    min_only = _minimum_payment_only(ctx, cards, card, in_window, days)

    utilization = cards.utilization
    known = ~np.isnan(utilization)
    max_util = np.full(n, -np.inf)
    np.maximum.at(max_util, cards.user[known], utilization[known])
    flags = {
        f"credit.flag_{round(t * 100)}": np.bincount(cards.user[utilization >= t - _EPS], minlength=n) > 0
        for t in UTILIZATION_FLAGS
    }
    return {
        "credit.max_utilization": np.where(np.isfinite(max_util), max_util, np.nan),
        "credit.card_count": np.bincount(cards.user, minlength=n).astype(float),
        **flags,
        "credit.interest_charges": _money(interest),
        "credit.minimum_payment_only": np.bincount(cards.user[min_only], minlength=n) > 0,
        "credit.overdue": np.bincount(cards.user[cards.overdue], minlength=n) > 0,
        "credit.cards": _card_lists(ctx, cards, card_interest, min_only),
    }


def _minimum_payment_only(
    ctx: _Context, cards: _Cards, card: np.ndarray, in_window: np.ndarray, days: int
) -> np.ndarray:
    """Per card: every payment in the window is within 10 % of the minimum payment while the balance
    exceeds it. Without payment transactions the liabilities' last payment (if in the window) counts."""
    n_cards = len(cards.user)
    paying = ctx.cat.card_payment | ctx.cat.loan_payment | ctx.cat.transfer_in
    payment = in_window & (card >= 0) & (ctx.amount < 0) & paying
    minimum = cards.minimum
    close = np.abs(-ctx.amount[payment] - minimum[card[payment]]) <= (
        MIN_PAYMENT_TOLERANCE * minimum[card[payment]] + _EPS
    )
    count = np.bincount(card[payment], minlength=n_cards)
    close_count = np.bincount(card[payment][close], minlength=n_cards)
    end = ctx.as_of[cards.user]
    recent_liab = (
        (count == 0)
        & ~np.isnan(cards.last_payment)
        & (cards.last_payment_day > end - days)
        & (cards.last_payment_day <= end)
    )
    liab_close = np.abs(cards.last_payment - minimum) <= MIN_PAYMENT_TOLERANCE * minimum + _EPS
    count = np.where(recent_liab, 1, count)
    close_count = np.where(recent_liab, liab_close.astype(int), close_count)
    has_minimum = ~np.isnan(minimum) & (minimum > 0)
    return has_minimum & (cards.balance > np.nan_to_num(minimum)) & (count > 0) & (close_count == count)


def _card_lists(
    ctx: _Context, cards: _Cards, interest: np.ndarray, min_only: np.ndarray
) -> list[list[dict[str, Any]]]:
    frame = cards.frame
    out: list[list[dict[str, Any]]] = [[] for _ in range(ctx.n_users)]
    names = frame["name"].astype(object).where(frame["name"].notna(), frame["official_name"])
    columns = zip(
        cards.user.tolist(),
        frame["account_id"].tolist(),
        names.tolist(),
        frame["mask"].astype(object).tolist(),
        cards.balance.tolist(),
        frame["balance_limit"].to_numpy(float, na_value=np.nan).tolist(),
        cards.utilization.tolist(),
        min_only.tolist(),
        cards.overdue.tolist(),
        interest.tolist(),
        frame["purchase_apr"].to_numpy(float, na_value=np.nan).tolist(),
        cards.minimum.tolist(),
        strict=True,
    )
    for (
        user,
        account_id,
        name,
        mask,
        balance,
        limit,
        util,
        only_min,
        overdue,
        charged,
        apr,
        minimum,
    ) in columns:
        out[user].append(
            {
                "account_id": account_id,
                "name": _clean(name),
                "mask": _clean(mask),
                "balance": round(balance, 2),
                "limit": _num(limit),
                "utilization": _num(util),
                "flags": [label for t, label in _FLAG_LABELS if util >= t - _EPS],
                "minimum_payment_only": only_min,
                "overdue": overdue,
                "interest_charges": round(charged, 2),
                "apr": _num(apr),
                "minimum_payment": _num(minimum),
            }
        )
    return out


def _num(value: float) -> float | None:
    return None if value != value else value  # NaN → None (JSON null)


def _clean(value: Any) -> Any:
    return None if value is None or (isinstance(value, float) and value != value) else value


# --------------------------------------------------------------------------------------------------
# Subscriptions and recurring streams


def _stream_candidates(ctx: _Context, data: Dataset) -> EventTable:
    """Outflows that could be subscriptions and income inflows, in the longest lookback."""
    cat = ctx.cat
    never = cat.transfer | cat.loan_payment | cat.income | cat.fee | cat.housing
    outflow = (ctx.amount > 0) & (ctx.on_dep | ctx.on_credit) & ~never
    inflow = _income_mask(ctx)
    longest = max(SUBSCRIPTION_LOOKBACK.values())
    recent = (ctx.day > ctx.end - longest) & (ctx.day <= ctx.end)
    rows = np.flatnonzero((outflow | inflow) & recent)
    tx = data.transactions
    keys, labels = merchant_keys(tx["merchant_entity_id"], tx["merchant_name"], tx["name"], ctx.pos[rows])
    candidates = StreamCandidates(
        user=ctx.user[rows],
        key=keys,
        inflow=inflow[rows],
        day=ctx.day[rows],
        amount=np.abs(ctx.amount[rows]),
        row=rows,
        labels=labels,
    )
    return build_events(candidates)


_MONTHLY_FACTOR = np.array([DAYS_PER_MONTH / d for d in NOMINAL_DAYS])


def _subscriptions(ctx: _Context, data: Dataset, streams: Streams, spending: np.ndarray) -> dict[str, Any]:
    n = ctx.n_users
    table = streams.table
    dicts = _stream_dicts(ctx, data, streams)
    user = table["user"].to_numpy(np.int64)
    inflow = table["inflow"].to_numpy(bool)
    recurring_out = table["recurring"].to_numpy(bool) & ~inflow
    cadence = table["cadence"].to_numpy(np.int64)
    monthly = table["typical_amount"].to_numpy(float) * _MONTHLY_FACTOR[cadence]
    rec_user = user[recurring_out]
    count = np.bincount(rec_user, minlength=n).astype(float)
    monthly_spend = np.bincount(rec_user, monthly[recurring_out], minlength=n)
    in_window = np.bincount(rec_user, table["window_amount"].to_numpy(float)[recurring_out], minlength=n)
    merchants: list[list[dict[str, Any]]] = [[] for _ in range(n)]
    all_streams: list[list[dict[str, Any]]] = [[] for _ in range(n)]
    for u, stream, rec, cad, per_month in zip(
        user.tolist(), dicts, recurring_out.tolist(), cadence.tolist(), monthly.tolist(), strict=True
    ):
        all_streams[u].append(stream)
        if rec:
            merchants[u].append(_merchant_entry(stream, CADENCES[cad], per_month))
    return {
        "subscriptions.recurring_merchant_count": count,
        "subscriptions.monthly_recurring_spend": _money(monthly_spend),
        "subscriptions.subscription_share": _ratio(in_window, spending),
        "subscriptions.recurring_merchants": merchants,
        "subscriptions.streams": all_streams,
    }


def _merchant_entry(stream: dict[str, Any], cadence: str, per_month: float) -> dict[str, Any]:
    return {
        "merchant": stream["merchant_name"],
        "cadence": cadence,
        "typical_amount": stream["typical_amount"],
        "count": stream["count"],
        "monthly_amount": round(per_month, 2),
        "last_date": stream["last_date"],
        "is_active": stream["is_active"],
        "price_change": stream["price_change"],
        "stream_id": stream["stream_id"],
        "evidence": stream["evidence"],
    }


def _iso(days: np.ndarray) -> list[str]:
    return np.asarray(days, dtype=np.int64).astype("datetime64[D]").astype(str).tolist()


def _stream_dicts(ctx: _Context, data: Dataset, streams: Streams) -> list[dict[str, Any]]:
    """Plaid recurring-stream shaped records (plus evidence for the decision trace)."""
    t = streams.table
    if t.empty:
        return []
    tx = data.transactions
    member_pos = ctx.pos[streams.member_row]
    ids = tx["transaction_id"].iloc[member_pos].astype(object).tolist()
    last_pos = member_pos[streams.member_start[1:] - 1]
    display = tx["merchant_name"].iloc[last_pos].astype(object)
    display = display.where(display.notna(), tx["name"].iloc[last_pos].astype(object)).tolist()
    user = t["user"].to_numpy(np.int64)
    keys = t["key"].to_numpy(np.int64)
    inflow = t["inflow"].to_numpy(bool)
    status = np.where(
        ~t["is_active"].to_numpy(bool),
        "TOMBSTONED",
        np.where(t["recurring"].to_numpy(bool), "MATURE", "EARLY_DETECTION"),
    ).tolist()
    change_day = t["change_day"].to_numpy(np.int64)
    change_iso = _iso(np.maximum(change_day, 0))
    bounds = streams.member_start.tolist()
    columns = zip(
        _stream_ids(ctx.users[user], streams.labels[keys], inflow),
        display,
        _iso(t["first_day"].to_numpy()),
        _iso(t["last_day"].to_numpy()),
        _iso(t["predicted_next_day"].to_numpy()),
        [FREQUENCIES[c] for c in t["cadence"].tolist()],
        np.round(t["average_amount"].to_numpy(float), 2).tolist(),
        np.round(t["last_amount"].to_numpy(float), 2).tolist(),
        np.round(t["typical_amount"].to_numpy(float), 2).tolist(),
        t["is_active"].to_numpy(bool).tolist(),
        status,
        inflow.tolist(),
        t["count"].to_numpy(np.int64).tolist(),
        t["median_gap"].to_numpy(float).tolist(),
        t["gap_max_deviation"].to_numpy(float).tolist(),
        np.round(t["amount_cv"].to_numpy(float), 4).tolist(),
        (change_day >= 0).tolist(),
        np.round(t["change_from"].to_numpy(float), 2).tolist(),
        np.round(t["change_to"].to_numpy(float), 2).tolist(),
        change_iso,
        bounds[:-1],
        bounds[1:],
        strict=True,
    )
    return [
        {
            "stream_id": sid,
            "merchant_name": name,
            "first_date": first,
            "last_date": last,
            "predicted_next_date": nxt,
            "frequency": freq,
            "average_amount": avg,
            "last_amount": last_amt,
            "typical_amount": typical,
            "is_active": active,
            "status": st,
            "direction": "inflow" if into else "outflow",
            "count": count,
            "transaction_ids": ids[a:b],
            "price_change": {"from": c_from, "to": c_to, "date": c_date} if changed else None,
            "evidence": {
                "gap_median": gap_med,
                "gap_max_deviation": gap_dev,
                "amount_cv": _num(cv),
                "price_change": changed,
            },
        }
        for (
            sid,
            name,
            first,
            last,
            nxt,
            freq,
            avg,
            last_amt,
            typical,
            active,
            st,
            into,
            count,
            gap_med,
            gap_dev,
            cv,
            changed,
            c_from,
            c_to,
            c_date,
            a,
            b,
        ) in columns
    ]


def _stream_ids(users: np.ndarray, labels: np.ndarray, inflow: np.ndarray) -> list[str]:
    """Stable opaque ids: the same user, merchant key and direction give the same id in every window
    and every run (key codes depend on the batch, so the key's text is hashed, not its code)."""
    return [
        hashlib.blake2b(f"{user}\x1f{int(into)}\x1f{label}".encode(), digest_size=8).hexdigest()
        for user, label, into in zip(users.tolist(), labels.tolist(), inflow.tolist(), strict=True)
    ]


# --------------------------------------------------------------------------------------------------
# Assembly


def compute_signals(data: Dataset, as_of: date | Mapping[str, date] | None = None) -> pd.DataFrame:
    """Signals for every user in ``data``: one row per (user_id, window), windows ``30d`` and ``180d``.

    ``as_of`` pins the window end (one date for everyone, or per user id); by default it is each
    user's latest posted transaction date, so results never depend on today's date. Pending
    transactions and business accounts are ignored. Columns: :data:`COLUMNS`.
    """
    ctx = _prepare(data, as_of)
    cards = _cards(ctx, data.credit_liabilities)
    spend = _spending_mask(ctx)
    candidates = _stream_candidates(ctx, data)
    frames = [
        _window_frame(ctx, data, cards, spend, candidates, name, days) for name, days in WINDOWS.items()
    ]
    out = pd.concat(frames, ignore_index=True)
    # user-major order: (u0, 30d), (u0, 180d), (u1, 30d), …
    order = np.argsort(np.concatenate([np.arange(ctx.n_users)] * len(frames)), kind="stable")
    return out.iloc[order].reset_index(drop=True)


def _window_frame(
    ctx: _Context,
    data: Dataset,
    cards: _Cards,
    spend: np.ndarray,
    candidates: EventTable,
    name: str,
    days: int,
) -> pd.DataFrame:
    months = days / DAYS_PER_MONTH
    in_window = (ctx.day > ctx.end - days) & (ctx.day <= ctx.end)
    cash = _cash_flow(ctx, in_window, spend, months)
    spending = cash["cash_flow.spending"]
    monthly_spending = spending / months
    streams = detect_streams(candidates, ctx.as_of, SUBSCRIPTION_LOOKBACK[name], window=days)
    columns: dict[str, Any] = {
        "user_id": ctx.users,
        "window": name,
        "as_of": _dates(ctx.as_of, ctx.has_as_of),
        "window_start": _dates(ctx.as_of - days + 1, ctx.has_as_of),
        "window_days": float(days),
        **_credit(ctx, cards, in_window, days),
        **_subscriptions(ctx, data, streams, spending),
        **_savings(ctx, in_window, days, monthly_spending),
        **_income(ctx, in_window, days, monthly_spending),
        **cash,
    }
    return pd.DataFrame({key: columns[key] for key in COLUMNS})


def _dates(days: np.ndarray, known: np.ndarray) -> list[date | None]:
    values = days.astype("datetime64[D]").astype(object)
    return [v if k else None for v, k in zip(values.tolist(), known.tolist(), strict=True)]
