"""Credit-card signals: utilization and its flags, interest, minimum-payment-only, overdue."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from . import classify as cls
from .context import NO_DATE, Context, Rows, days
from .recurring import group_sum

__all__ = ["UTILIZATION_FLAGS", "Cards", "cards", "credit_signals"]

UTILIZATION_FLAGS = (0.30, 0.50, 0.80)
MIN_PAYMENT_TOLERANCE = 0.10
_EPS = 1e-9
# card flags by how many thresholds the utilization reaches (0-3)
_FLAG_LISTS = tuple(tuple(str(round(t * 100)) for t in UTILIZATION_FLAGS[:n]) for n in range(4))


@dataclass
class Cards:
    frame: pd.DataFrame  # one row per analyzable credit account, with its liabilities joined
    user: np.ndarray
    utilization: np.ndarray  # balance / limit, NaN without a limit
    minimum: np.ndarray
    balance: np.ndarray
    liability_interest: np.ndarray
    last_payment: np.ndarray
    last_payment_day: np.ndarray  # NO_DATE when unknown
    overdue: np.ndarray
    interest: Rows  # interest-charge transactions (card index in ``interest_card``)
    interest_card: np.ndarray  # card index per interest row (-1 = not on a card)
    payments: Rows  # payments into a card (positive amounts)
    payment_card: np.ndarray
    base: list[dict[str, Any]] = field(default_factory=list)  # window-independent card records


def cards(ctx: Context, liabilities: pd.DataFrame) -> Cards:
    acc = ctx.accounts
    rows = np.flatnonzero(acc.is_credit)
    frame = acc.frame.iloc[rows].reset_index(drop=True)
    frame["_user"] = acc.user[rows]
    frame["account_id"] = frame["account_id"].astype(object)
    liab = liabilities.copy()
    liab["_user"] = pd.Index(ctx.users).get_indexer(liab["user_id"].astype(object).fillna("").astype(str))
    liab["account_id"] = liab["account_id"].astype(object)
    liab = liab.drop_duplicates(["_user", "account_id"], keep="last").drop(columns=["user_id"])
    frame = frame.merge(liab, on=["_user", "account_id"], how="left", suffixes=("", "_liab"))
    balance = frame["balance_current"].astype(float).fillna(0.0).to_numpy(float)
    limit = frame["balance_limit"].to_numpy(float, na_value=np.nan)
    has_limit = limit > 0
    utilization = np.where(has_limit, np.maximum(balance, 0.0) / np.where(has_limit, limit, 1.0), np.nan)
    last_day, last_ok = days(frame["last_payment_date"])
    of_account = np.full(len(acc.frame), -1, dtype=np.int64)
    of_account[rows] = np.arange(len(rows))
    card = of_account[ctx.acct]
    interest = ctx.rows(ctx.cat.has(cls.INTEREST_CHARGE) & (ctx.amount > 0))
    paying = ctx.cat.has(cls.CARD_PAYMENT | cls.LOAN_PAYMENT | cls.TRANSFER_IN)
    payments = ctx.rows((card >= 0) & (ctx.amount < 0) & paying)
    payments.amount = -payments.amount
    out = Cards(
        frame=frame,
        user=frame["_user"].to_numpy(np.int64),
        utilization=utilization,
        minimum=frame["minimum_payment_amount"].to_numpy(float, na_value=np.nan),
        balance=balance,
        liability_interest=frame["interest_charge_amount"].astype(float).fillna(0.0).to_numpy(float),
        last_payment=frame["last_payment_amount"].to_numpy(float, na_value=np.nan),
        last_payment_day=np.where(last_ok, last_day, NO_DATE),
        overdue=frame["is_overdue"].astype("boolean").fillna(False).to_numpy(bool),
        interest=interest,
        interest_card=card[interest.index],
        payments=payments,
        payment_card=card[payments.index],
    )
    out.base = _card_base(out)
    return out


def credit_signals(ctx: Context, c: Cards, window: int) -> dict[str, Any]:
    n, n_cards = ctx.n_users, len(c.user)
    charged = c.interest.within(window)
    on_card = charged & (c.interest_card >= 0)
    card_tx_interest = group_sum(c.interest_card[on_card], c.interest.amount[on_card], n_cards)
    # Interest from the card's transactions when it has any in the window, else the liabilities' APR
    # interest (the last statement) - never both, so a charge is not counted twice.
    card_interest = np.where(card_tx_interest > 0, card_tx_interest, c.liability_interest)
    interest = group_sum(c.user, card_interest, n) + c.interest.total(n, charged & (c.interest_card < 0))
    min_only = _minimum_payment_only(ctx, c, window)
    known = ~np.isnan(c.utilization)
    max_util = np.full(n, -np.inf)
    np.maximum.at(max_util, c.user[known], c.utilization[known])
    flags = {
        f"credit.flag_{round(t * 100)}": np.bincount(c.user[c.utilization >= t - _EPS], minlength=n) > 0
        for t in UTILIZATION_FLAGS
    }
    return {
        "credit.max_utilization": np.where(np.isfinite(max_util), max_util, np.nan),
        "credit.card_count": np.bincount(c.user, minlength=n).astype(float),
        **flags,
        "credit.interest_charges": np.round(interest, 2),
        "credit.minimum_payment_only": np.bincount(c.user[min_only], minlength=n) > 0,
        "credit.overdue": np.bincount(c.user[c.overdue], minlength=n) > 0,
        "credit.cards": _card_lists(ctx, c, card_interest, min_only),
    }


def _minimum_payment_only(ctx: Context, c: Cards, window: int) -> np.ndarray:
    """Per card: every payment in the window is within 10 % of the minimum payment while the balance
    exceeds it. Without payment transactions the liabilities' last payment (if in the window) counts."""
    n_cards = len(c.user)
    recent = c.payments.within(window)
    card = c.payment_card[recent]
    minimum = c.minimum[card]
    close = np.abs(c.payments.amount[recent] - minimum) <= MIN_PAYMENT_TOLERANCE * minimum + _EPS
    count = np.bincount(card, minlength=n_cards)
    close_count = np.bincount(card[close], minlength=n_cards)
    rel = ctx.as_of[c.user] - c.last_payment_day
    from_liabilities = (count == 0) & ~np.isnan(c.last_payment) & (rel >= 0) & (rel < window)
    liab_close = np.abs(c.last_payment - c.minimum) <= MIN_PAYMENT_TOLERANCE * c.minimum + _EPS
    count = np.where(from_liabilities, 1, count)
    close_count = np.where(from_liabilities, liab_close.astype(int), close_count)
    has_minimum = ~np.isnan(c.minimum) & (c.minimum > 0)
    return has_minimum & (c.balance > np.nan_to_num(c.minimum)) & (count > 0) & (close_count == count)


def _num(value: float) -> float | None:
    return None if value != value else value  # NaN → None (JSON null)


def _clean(value: Any) -> Any:
    return None if value is None or (isinstance(value, float) and value != value) else value


def _card_base(c: Cards) -> list[dict[str, Any]]:
    """The window-independent part of each card's record (built once, copied per window)."""
    frame = c.frame
    names = frame["name"].astype(object).where(frame["name"].notna(), frame["official_name"].astype(object))
    reached = np.zeros(len(c.user), dtype=np.int64)
    for threshold in UTILIZATION_FLAGS:
        reached += c.utilization >= threshold - _EPS
    rows = zip(
        frame["account_id"].tolist(),
        names.tolist(),
        frame["mask"].astype(object).tolist(),
        np.round(c.balance, 2).tolist(),
        frame["balance_limit"].to_numpy(float, na_value=np.nan).tolist(),
        c.utilization.tolist(),
        reached.tolist(),
        c.overdue.tolist(),
        frame["purchase_apr"].to_numpy(float, na_value=np.nan).tolist(),
        c.minimum.tolist(),
        strict=True,
    )
    return [
        {
            "account_id": account_id,
            "name": _clean(name),
            "mask": _clean(mask),
            "balance": balance,
            "limit": _num(limit),
            "utilization": _num(util),
            "flags": _FLAG_LISTS[n_flags],
            "minimum_payment_only": False,  # per window
            "overdue": overdue,
            "interest_charges": 0.0,  # per window
            "apr": _num(apr),
            "minimum_payment": _num(minimum),
        }
        for account_id, name, mask, balance, limit, util, n_flags, overdue, apr, minimum in rows
    ]


def _card_lists(
    ctx: Context, c: Cards, interest: np.ndarray, min_only: np.ndarray
) -> list[list[dict[str, Any]]]:
    out: list[list[dict[str, Any]]] = [[] for _ in range(ctx.n_users)]
    rows = zip(c.user.tolist(), c.base, min_only.tolist(), np.round(interest, 2).tolist(), strict=True)
    for user, base, only_min, charged in rows:
        record = {**base, "minimum_payment_only": only_min, "interest_charges": charged}
        record["flags"] = list(base["flags"])  # each record owns its list
        out[user].append(record)
    return out
