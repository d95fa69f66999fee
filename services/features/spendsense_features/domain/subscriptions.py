"""Subscription signals and Plaid-shaped recurring streams, from the vectorized detector."""

from __future__ import annotations

import hashlib
from typing import Any

import numpy as np

from spendsense_shared.guardrails.untrusted import merchant_display

from . import classify as cls
from .classify import merchant_keys
from .context import Context
from .dataset import Dataset
from .recurring import (
    CADENCES,
    FREQUENCIES,
    NOMINAL_DAYS,
    EventTable,
    StreamCandidates,
    Streams,
    build_events,
    detect_streams,
    group_sum,
)

__all__ = ["stream_events", "subscription_signals"]

DAYS_PER_MONTH = 30.4375
# Never subscriptions: housing, loan and card payments, transfers, income and fees.
_NEVER = cls.TRANSFER | cls.LOAN_PAYMENT | cls.INCOME | cls.FEE | cls.HOUSING
_MONTHLY_FACTOR = np.array([DAYS_PER_MONTH / d for d in NOMINAL_DAYS])


def stream_events(ctx: Context, data: Dataset, lookback: int) -> EventTable:
    """Candidate transactions - outflows that could be subscriptions and income inflows - in the
    longest ``lookback``, keyed by merchant and grouped into events once for every window."""
    on_spend_account = ctx.accounts.is_dep[ctx.acct] | ctx.accounts.is_credit[ctx.acct]
    outflow = (ctx.amount > 0) & on_spend_account & ~ctx.cat.has(_NEVER)
    recent = (ctx.rel >= 0) & (ctx.rel < lookback)
    rows = np.flatnonzero((outflow | ctx.income) & recent)
    tx = data.transactions
    keys, labels = merchant_keys(tx["merchant_entity_id"], tx["merchant_name"], tx["name"], ctx.pos[rows])
    candidates = StreamCandidates(
        user=ctx.user[rows],
        key=keys,
        inflow=ctx.income[rows],
        day=ctx.day[rows],
        amount=np.abs(ctx.amount[rows]),
        row=rows,
        labels=labels,
    )
    return build_events(candidates)


def subscription_signals(
    ctx: Context, data: Dataset, events: EventTable, lookback: int, window: int, spending: np.ndarray
) -> dict[str, Any]:
    n = ctx.n_users
    streams = detect_streams(events, ctx.as_of, lookback, window=window)
    table = streams.table
    dicts = _stream_dicts(ctx, data, streams)
    user = table["user"].to_numpy(np.int64)
    recurring_out = table["recurring"].to_numpy(bool) & ~table["inflow"].to_numpy(bool)
    cadence = table["cadence"].to_numpy(np.int64)
    monthly = table["typical_amount"].to_numpy(float) * _MONTHLY_FACTOR[cadence]
    rec_user = user[recurring_out]
    in_window = group_sum(rec_user, table["window_amount"].to_numpy(float)[recurring_out], n)
    merchants: list[list[dict[str, Any]]] = [[] for _ in range(n)]
    all_streams: list[list[dict[str, Any]]] = [[] for _ in range(n)]
    for u, stream, rec, cad, per_month in zip(
        user.tolist(), dicts, recurring_out.tolist(), cadence.tolist(), monthly.tolist(), strict=True
    ):
        all_streams[u].append(stream)
        if rec:
            merchants[u].append(_merchant_entry(stream, CADENCES[cad], per_month))
    safe = np.where(spending > 0, spending, 1.0)
    return {
        "subscriptions.recurring_merchant_count": np.bincount(rec_user, minlength=n).astype(float),
        "subscriptions.monthly_recurring_spend": np.round(group_sum(rec_user, monthly[recurring_out], n), 2),
        # the recurring charges inside the window, as a fraction of all spending in it
        "subscriptions.subscription_share": np.where(spending > 0, in_window / safe, np.nan),
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


def _shown(name: Any) -> Any:
    """A merchant name as users may see it (the web app charts these): a known merchant's own name, the
    cleaned name, or a neutral label when it reads like a lure or an instruction (shared sanitizer)."""
    safe = merchant_display(name) if isinstance(name, str) else None
    return name if safe is None else safe.text


def _iso(day_numbers: np.ndarray) -> list[str]:
    return np.asarray(day_numbers, dtype=np.int64).astype("datetime64[D]").astype(str).tolist()


def _stream_ids(users: np.ndarray, labels: np.ndarray, inflow: np.ndarray) -> list[str]:
    """Stable opaque ids: the same user, merchant key and direction give the same id in every window
    and every run (key codes depend on the batch, so the key's text is hashed, not its code)."""
    return [
        hashlib.blake2b(f"{user}\x1f{int(into)}\x1f{label}".encode(), digest_size=8).hexdigest()
        for user, label, into in zip(users.tolist(), labels.tolist(), inflow.tolist(), strict=True)
    ]


def _status(table: Any) -> list[str]:
    active = table["is_active"].to_numpy(bool)
    mature = table["recurring"].to_numpy(bool)
    return np.where(~active, "TOMBSTONED", np.where(mature, "MATURE", "EARLY_DETECTION")).tolist()


def _money(values: Any) -> list[float]:
    return np.round(np.asarray(values, dtype=float), 2).tolist()


def _stream_dicts(ctx: Context, data: Dataset, streams: Streams) -> list[dict[str, Any]]:
    """Plaid recurring-stream shaped records, plus evidence for the decision trace."""
    t = streams.table
    if t.empty:
        return []
    tx = data.transactions
    member_pos = ctx.pos[streams.member_row]
    ids = tx["transaction_id"].iloc[member_pos].astype(object).tolist()
    last_pos = member_pos[streams.member_start[1:] - 1]
    display = tx["merchant_name"].iloc[last_pos].astype(object)
    display = display.where(display.notna(), tx["name"].iloc[last_pos].astype(object)).tolist()
    display = [_shown(name) for name in display]
    inflow = t["inflow"].to_numpy(bool)
    change_day = t["change_day"].to_numpy(np.int64)
    bounds = streams.member_start.tolist()
    columns = zip(
        _stream_ids(
            ctx.users[t["user"].to_numpy(np.int64)], streams.labels[t["key"].to_numpy(np.int64)], inflow
        ),
        display,
        _iso(t["first_day"].to_numpy()),
        _iso(t["last_day"].to_numpy()),
        _iso(t["predicted_next_day"].to_numpy()),
        [FREQUENCIES[c] for c in t["cadence"].tolist()],
        _money(t["average_amount"]),
        _money(t["last_amount"]),
        _money(t["typical_amount"]),
        t["is_active"].to_numpy(bool).tolist(),
        _status(t),
        inflow.tolist(),
        t["count"].to_numpy(np.int64).tolist(),
        t["median_gap"].to_numpy(float).tolist(),
        t["gap_max_deviation"].to_numpy(float).tolist(),
        np.round(t["amount_cv"].to_numpy(float), 4).tolist(),
        (change_day >= 0).tolist(),
        _money(t["change_from"]),
        _money(t["change_to"]),
        _iso(np.maximum(change_day, 0)),
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
            "status": status,
            "direction": "inflow" if into else "outflow",
            "count": count,
            "transaction_ids": ids[a:b],
            "price_change": {"from": c_from, "to": c_to, "date": c_date} if changed else None,
            "evidence": {
                "gap_median": gap_med,
                "gap_max_deviation": gap_dev,
                "amount_cv": None if cv != cv else cv,
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
            status,
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
