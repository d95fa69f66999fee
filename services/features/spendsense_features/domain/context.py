"""One pass over a :class:`Dataset` into integer-coded arrays, shared by every signal group.

Users become integer codes (index into ``Context.users``), dates become day numbers and every
transaction gets its position relative to its user's as-of date (``rel``: 0 = the as-of day,
29 = the first day of the 30-day window, negative = after the as-of date). The transaction classes the
signals need (spending, income, payroll, savings, fees, interest, card payments) are cut out once as
small :class:`Rows` subsets, so a window is one integer comparison on each subset.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date
from typing import Any

import numpy as np
import pandas as pd

from spendsense_shared.dataset import SAVINGS_SUBTYPES

from . import classify as cls
from .classify import CategoryFlags, codes, payroll_name_flags
from .dataset import Dataset
from .recurring import group_sum

__all__ = ["NO_DATE", "Accounts", "Context", "Rows", "day_number", "days", "prepare"]

NO_DATE = -(10**9)  # as-of of a user without any posted transaction: every window is empty


@dataclass
class Rows:
    """A class of transactions: parallel arrays, one entry per transaction in the class."""

    index: np.ndarray  # position in the Context arrays
    user: np.ndarray
    rel: np.ndarray  # days before the user's as-of date
    amount: np.ndarray

    def within(self, days: int) -> np.ndarray:
        """In the window of ``days`` days ending at the as-of date."""
        return (self.rel >= 0) & (self.rel < days)

    def total(self, n_users: int, mask: np.ndarray | None = None, count: bool = False) -> np.ndarray:
        """Sum of amounts (or the number of transactions) per user code, over ``mask``."""
        user = self.user if mask is None else self.user[mask]
        if count:
            return np.bincount(user, minlength=n_users).astype(float)
        amount = self.amount if mask is None else self.amount[mask]
        return group_sum(user, amount, n_users)


@dataclass
class Accounts:
    frame: pd.DataFrame  # analyzable (non-business) accounts, de-duplicated
    user: np.ndarray
    is_dep: np.ndarray
    is_credit: np.ndarray
    is_savings: np.ndarray
    is_checking: np.ndarray
    balance: np.ndarray  # current balance (available when current is missing), NaN → 0


@dataclass
class Context:
    users: np.ndarray  # user ids (object), sorted; user code = index
    as_of: np.ndarray  # int days per user (NO_DATE when unknown)
    has_as_of: np.ndarray
    accounts: Accounts
    # one entry per posted transaction on an analyzable account:
    pos: np.ndarray  # row position in data.transactions
    user: np.ndarray
    day: np.ndarray
    rel: np.ndarray
    amount: np.ndarray
    acct: np.ndarray  # row in accounts.frame
    cat: CategoryFlags
    income: np.ndarray  # income inflows (money in to depository: INCOME or payroll description)
    payroll: np.ndarray  # pay cheques (income less interest, dividends, tax refunds)
    category_names: np.ndarray

    @property
    def n_users(self) -> int:
        return len(self.users)

    def rows(self, mask: np.ndarray) -> Rows:
        index = np.flatnonzero(mask)
        return Rows(index, self.user[index], self.rel[index], self.amount[index])


def days(values: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """Dates as int days since the epoch, plus a validity mask (one integer division, whatever the
    datetime unit)."""
    raw = values.to_numpy()
    if raw.dtype.kind != "M":
        raw = pd.to_datetime(values, errors="coerce").to_numpy()
    valid = ~np.isnat(raw)
    unit, _ = np.datetime_data(raw.dtype)
    per_day = int(np.timedelta64(1, "D").astype(f"timedelta64[{unit}]").astype(np.int64))
    return np.floor_divide(raw.view(np.int64), per_day), valid


def day_number(value: date) -> int:
    return int(np.datetime64(value, "D").astype(np.int64))


def _lower(values: pd.Series) -> np.ndarray:
    """Lower-cased text, nulls as "" (works for string, object and categorical columns alike)."""
    return np.array([v.lower() if isinstance(v, str) else "" for v in values.tolist()], dtype=object)


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
    latest = np.full(len(users), NO_DATE, dtype=np.int64)
    np.maximum.at(latest, tx_user[ok], day[ok])
    if as_of is None:
        return latest
    if isinstance(as_of, date):
        return np.full(len(users), day_number(as_of), dtype=np.int64)
    pinned = pd.Index(users).get_indexer(list(as_of.keys()))
    for code, value in zip(pinned, as_of.values(), strict=True):
        if code >= 0:
            latest[code] = day_number(value)
    return latest


def _accounts(data: Dataset, acc_user: np.ndarray) -> tuple[Accounts, np.ndarray]:
    """Analyzable accounts and, for every account row of ``data``, its row there (-1 if excluded)."""
    frame = data.accounts
    keep = (_lower(frame["holder_category"]) != "business") & (acc_user >= 0)
    # the last row wins when an upload repeats an account
    dup = pd.DataFrame({"u": acc_user, "a": frame["account_id"].astype(object)}).duplicated(keep="last")
    keep &= ~dup.to_numpy()
    rows = np.flatnonzero(keep)
    kept = frame.iloc[rows].reset_index(drop=True)
    kind, subtype = _lower(kept["type"]), _lower(kept["subtype"])
    is_savings = np.isin(subtype, list(SAVINGS_SUBTYPES)) & ~np.isin(kind, ["credit", "loan"])
    is_dep = kind == "depository"
    current = kept["balance_current"].astype(float).fillna(kept["balance_available"].astype(float))
    accounts = Accounts(
        frame=kept,
        user=acc_user[rows],
        is_dep=is_dep,
        is_credit=kind == "credit",
        is_savings=is_savings,
        # cash-flow buffer: the transactional (non-savings) depository accounts
        is_checking=is_dep & ~is_savings,
        balance=current.fillna(0.0).to_numpy(float),
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
    return np.where(known & (found >= 0), acc_row[usable][found], -1)


def prepare(data: Dataset, as_of: date | Mapping[str, date] | None) -> Context:
    tx = data.transactions
    users, tx_user, acc_user = _user_index(data)
    day, day_ok = days(tx["date"])
    amount = tx["amount"].to_numpy(float, na_value=np.nan)
    posted = ~tx["pending"].to_numpy(bool) & day_ok & (tx_user >= 0)
    as_of_days = _resolve_as_of(users, tx_user, day, posted, as_of)
    accounts, acc_row = _accounts(data, acc_user)
    tx_acct = _transaction_accounts(data, tx_user, acc_user, acc_row)
    pos = np.flatnonzero(posted & (tx_acct >= 0) & ~np.isnan(amount))

    cat = CategoryFlags(tx["category_primary"], tx["category_detailed"], tx["category_detailed_raw"], pos)
    user, acct, amt, day = tx_user[pos], tx_acct[pos], amount[pos], day[pos]
    # Payroll-by-description only matters for money into depository accounts: scan just those names.
    money_in = np.flatnonzero((amt < 0) & accounts.is_dep[acct])
    by_name = np.zeros(pos.size, dtype=bool)
    by_name[money_in] = payroll_name_flags(tx["name"].iloc[pos[money_in]])
    # Direction comes from the account type and the sign, never from a category's description.
    into_dep = np.zeros(pos.size, dtype=bool)
    into_dep[money_in] = True
    income = into_dep & (cat.has(cls.INCOME) | by_name)
    wages = cat.has(cls.INCOME) & ~cat.has(cls.NOT_PAYROLL)
    return Context(
        users=users,
        as_of=as_of_days,
        has_as_of=as_of_days != NO_DATE,
        accounts=accounts,
        pos=pos,
        user=user,
        day=day,
        rel=as_of_days[user] - day,
        amount=amt,
        acct=acct,
        cat=cat,
        income=income,
        payroll=into_dep & (wages | by_name),
        category_names=cat.primary_names,
    )
