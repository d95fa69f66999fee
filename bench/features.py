"""Features throughput: signals + personas for many users at once vs. one user at a time.

Generates N synthetic users in memory (6 months each: pay cheques, rent, subscriptions with price
changes, card payments, savings transfers, interest, overdraft fees, ~60-150 purchases a month over a
few thousand store-numbered merchants, pending and business-account noise), loads them through the
production Arrow path (``Dataset.from_arrow``), then times in the same run:

  * batch    — ``compute_signals`` + ``assign_personas`` over every user at once;
  * baseline — the same two functions called once per user on that user's slice (a subset of users).

Throughput is transactions per second, single process (the machine has 2 cores; numpy/pandas here run
on one). Prints both and the ratio and writes bench/results/features.json.

    .venv/bin/python bench/features.py [--users 10000] [--baseline-users 500] [--profile]
"""

from __future__ import annotations

import argparse
import cProfile
import io
import json
import os
import platform
import pstats
import time
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa

from spendsense_features.domain.dataset import Dataset
from spendsense_features.domain.rules import assign_personas, load_rule_set
from spendsense_features.domain.signals import compute_signals
from spendsense_shared.dataset import TABLES

RESULTS = Path(__file__).parent / "results" / "features.json"
DAYS = 182
END = date(2025, 6, 30)

# (display name, raw description, price, primary, detailed)
SUBSCRIPTIONS = [
    ("Netflix", "NETFLIX.COM", 15.49, "ENTERTAINMENT", "ENTERTAINMENT_TV_AND_MOVIES"),
    ("Spotify", "SPOTIFY USA", 10.99, "ENTERTAINMENT", "ENTERTAINMENT_MUSIC_AND_AUDIO"),
    ("Hulu", "HULU 877-8244858", 7.99, "ENTERTAINMENT", "ENTERTAINMENT_TV_AND_MOVIES"),
    ("Disney Plus", "DISNEYPLUS", 13.99, "ENTERTAINMENT", "ENTERTAINMENT_TV_AND_MOVIES"),
    ("Apple", "APPLE.COM/BILL", 2.99, "GENERAL_SERVICES", "GENERAL_SERVICES_OTHER_GENERAL_SERVICES"),
    (
        "Amazon Prime",
        "AMAZON PRIME*2K4",
        14.99,
        "GENERAL_MERCHANDISE",
        "GENERAL_MERCHANDISE_ONLINE_MARKETPLACES",
    ),
    ("YouTube Premium", "GOOGLE *YOUTUBEPREMIUM", 13.99, "ENTERTAINMENT", "ENTERTAINMENT_TV_AND_MOVIES"),
    (
        "New York Times",
        "NYTIMES DIGITAL",
        17.0,
        "GENERAL_SERVICES",
        "GENERAL_SERVICES_OTHER_GENERAL_SERVICES",
    ),
    (
        "Planet Fitness",
        "PLANET FITNESS #0412",
        24.99,
        "PERSONAL_CARE",
        "PERSONAL_CARE_GYMS_AND_FITNESS_CENTERS",
    ),
    ("Adobe", "ADOBE *CREATIVE CLD", 54.99, "GENERAL_SERVICES", "GENERAL_SERVICES_OTHER_GENERAL_SERVICES"),
    ("Dropbox", "DROPBOX*7HJ2", 11.99, "GENERAL_SERVICES", "GENERAL_SERVICES_OTHER_GENERAL_SERVICES"),
    ("Audible", "AUDIBLE*MK2", 14.95, "ENTERTAINMENT", "ENTERTAINMENT_MUSIC_AND_AUDIO"),
    ("Max", "HBOMAX.COM", 15.99, "ENTERTAINMENT", "ENTERTAINMENT_TV_AND_MOVIES"),
    ("Peloton", "PELOTON* MEMBERSHIP", 44.0, "PERSONAL_CARE", "PERSONAL_CARE_GYMS_AND_FITNESS_CENTERS"),
    ("Xbox", "MICROSOFT*XBOX", 16.99, "ENTERTAINMENT", "ENTERTAINMENT_VIDEO_GAMES"),
    ("Microsoft 365", "MSFT * M365", 9.99, "GENERAL_SERVICES", "GENERAL_SERVICES_OTHER_GENERAL_SERVICES"),
    ("Duolingo", "DUOLINGO", 6.99, "GENERAL_SERVICES", "GENERAL_SERVICES_EDUCATION"),
    ("Headspace", "HEADSPACE.COM", 12.99, "PERSONAL_CARE", "PERSONAL_CARE_OTHER_PERSONAL_CARE"),
    ("Verizon", "VERIZON WIRELESS PAYMENTS", 85.0, "RENT_AND_UTILITIES", "RENT_AND_UTILITIES_TELEPHONE"),
    ("Comcast", "COMCAST XFINITY", 79.99, "RENT_AND_UTILITIES", "RENT_AND_UTILITIES_INTERNET_AND_CABLE"),
]
# brand, primary, detailed, typical amount (lognormal median)
BRANDS = [
    ("WHOLE FOODS", "FOOD_AND_DRINK", "FOOD_AND_DRINK_GROCERIES", 65.0),
    ("TRADER JOES", "FOOD_AND_DRINK", "FOOD_AND_DRINK_GROCERIES", 48.0),
    ("SAFEWAY", "FOOD_AND_DRINK", "FOOD_AND_DRINK_GROCERIES", 55.0),
    ("KROGER", "FOOD_AND_DRINK", "FOOD_AND_DRINK_GROCERIES", 60.0),
    ("STARBUCKS STORE", "FOOD_AND_DRINK", "FOOD_AND_DRINK_COFFEE", 6.5),
    ("DUNKIN", "FOOD_AND_DRINK", "FOOD_AND_DRINK_COFFEE", 5.0),
    ("CHIPOTLE", "FOOD_AND_DRINK", "FOOD_AND_DRINK_FAST_FOOD", 13.0),
    ("MCDONALDS", "FOOD_AND_DRINK", "FOOD_AND_DRINK_FAST_FOOD", 9.0),
    ("SWEETGREEN", "FOOD_AND_DRINK", "FOOD_AND_DRINK_RESTAURANT", 16.0),
    ("OLIVE GARDEN", "FOOD_AND_DRINK", "FOOD_AND_DRINK_RESTAURANT", 45.0),
    ("SHELL OIL", "TRANSPORTATION", "TRANSPORTATION_GAS", 42.0),
    ("CHEVRON", "TRANSPORTATION", "TRANSPORTATION_GAS", 45.0),
    ("UBER TRIP", "TRANSPORTATION", "TRANSPORTATION_TAXIS_AND_RIDE_SHARES", 21.0),
    ("LYFT RIDE", "TRANSPORTATION", "TRANSPORTATION_TAXIS_AND_RIDE_SHARES", 19.0),
    ("TARGET", "GENERAL_MERCHANDISE", "GENERAL_MERCHANDISE_SUPERSTORES", 58.0),
    ("WALMART", "GENERAL_MERCHANDISE", "GENERAL_MERCHANDISE_SUPERSTORES", 52.0),
    ("AMAZON MKTPL", "GENERAL_MERCHANDISE", "GENERAL_MERCHANDISE_ONLINE_MARKETPLACES", 35.0),
    ("CVS PHARMACY", "MEDICAL", "MEDICAL_PHARMACIES_AND_SUPPLEMENTS", 18.0),
    ("WALGREENS", "MEDICAL", "MEDICAL_PHARMACIES_AND_SUPPLEMENTS", 16.0),
    ("HOME DEPOT", "HOME_IMPROVEMENT", "HOME_IMPROVEMENT_HARDWARE", 75.0),
    ("BEST BUY", "GENERAL_MERCHANDISE", "GENERAL_MERCHANDISE_ELECTRONICS", 120.0),
    ("AMC THEATRES", "ENTERTAINMENT", "ENTERTAINMENT_TV_AND_MOVIES", 28.0),
    ("SEPHORA", "PERSONAL_CARE", "PERSONAL_CARE_OTHER_PERSONAL_CARE", 44.0),
    ("DOORDASH", "FOOD_AND_DRINK", "FOOD_AND_DRINK_RESTAURANT", 32.0),
    ("GREAT CLIPS", "PERSONAL_CARE", "PERSONAL_CARE_HAIR_AND_BEAUTY", 25.0),
]
STORES_PER_BRAND = 120
FAVOURITES = 30


@dataclass
class _Rows:
    """Column buffers for generated transactions (numpy arrays, concatenated at the end)."""

    user: list[np.ndarray]
    account: list[np.ndarray]
    day: list[np.ndarray]
    amount: list[np.ndarray]
    label: list[np.ndarray]  # index into the label pool (name, merchant_name, entity, categories)

    def add(self, user: Any, account: Any, day: Any, amount: Any, label: Any) -> None:
        n = max(np.size(v) for v in (user, account, day, amount, label))
        self.user.append(np.broadcast_to(np.asarray(user), n).astype(np.int64))
        self.account.append(np.broadcast_to(np.asarray(account), n).astype(np.int64))
        self.day.append(np.broadcast_to(np.asarray(day), n).astype(np.int64))
        self.amount.append(np.broadcast_to(np.asarray(amount, dtype=float), n).astype(float))
        self.label.append(np.broadcast_to(np.asarray(label), n).astype(np.int64))


class _Labels:
    """Pool of (name, merchant_name, merchant_entity_id, primary, detailed, raw) combinations."""

    def __init__(self) -> None:
        self.rows: list[tuple[str, str | None, str | None, str, str, str]] = []

    def add(
        self, name: str, merchant: str | None, entity: str | None, primary: str, detailed: str, raw: str = ""
    ) -> int:
        self.rows.append((name, merchant, entity, primary, detailed, raw or detailed))
        return len(self.rows) - 1


def _accounts(rng: np.random.Generator, n_users: int) -> tuple[pd.DataFrame, dict[str, np.ndarray]]:
    has_savings = rng.random(n_users) < 0.7
    n_cards = rng.choice([0, 1, 2, 3], p=[0.2, 0.4, 0.3, 0.1], size=n_users)
    has_business = rng.random(n_users) < 0.05
    records: list[dict[str, Any]] = []
    checking = np.empty(n_users, dtype=np.int64)
    savings = np.full(n_users, -1, dtype=np.int64)
    business = np.full(n_users, -1, dtype=np.int64)
    cards: list[list[int]] = [[] for _ in range(n_users)]
    limits = np.array([1000, 2500, 5000, 8000, 12000, 20000], dtype=float)
    for u in range(n_users):

        def add(
            kind: str, subtype: str, balance: float, limit: float | None = None, holder: str = "individual"
        ) -> int:
            records.append(
                {
                    "user_id": f"user-{u:06d}",
                    "account_id": f"acc-{u:06d}-{len(records)}",
                    "name": f"{subtype.title()} {len(records) % 10}",
                    "official_name": None,
                    "type": kind,
                    "subtype": subtype,
                    "holder_category": holder,
                    "balance_available": balance if kind == "depository" else None,
                    "balance_current": balance,
                    "balance_limit": limit,
                    "iso_currency_code": "USD",
                    "mask": f"{rng.integers(1000, 9999)}",
                }
            )
            return len(records) - 1

        checking[u] = add("depository", "checking", float(np.round(rng.lognormal(7.5, 1.0), 2)))
        if has_savings[u]:
            savings[u] = add("depository", "savings", float(np.round(rng.lognormal(8.3, 1.2), 2)))
        for _ in range(n_cards[u]):
            limit = float(rng.choice(limits))
            cards[u].append(add("credit", "credit card", float(np.round(limit * rng.beta(2, 3), 2)), limit))
        if has_business[u]:
            business[u] = add("depository", "checking", 25000.0, holder="business")
    card_lists = np.full((n_users, 3), -1, dtype=np.int64)
    for u, ids in enumerate(cards):
        card_lists[u, : len(ids)] = ids
    return pd.DataFrame.from_records(records), {
        "checking": checking,
        "savings": savings,
        "business": business,
        "cards": card_lists,
        "n_cards": n_cards,
    }


def _pay_days(rng: np.random.Generator, n_users: int) -> tuple[np.ndarray, np.ndarray]:
    """(user, day) of every pay cheque: bi-weekly, semi-monthly, monthly or irregular gig income."""
    schedule = rng.choice(4, p=[0.45, 0.2, 0.2, 0.15], size=n_users)
    users, days = [], []
    offsets = rng.integers(0, 14, size=n_users)
    for kind, step in ((0, 14), (2, 30)):
        sel = np.flatnonzero(schedule == kind)
        grid = np.arange(0, DAYS, step)
        users.append(np.repeat(sel, grid.size))
        days.append((offsets[sel][:, None] % step + grid[None, :]).ravel())
    semi = np.flatnonzero(schedule == 1)
    month_starts = np.array([(date(2025, m, 1) - date(2025, 1, 1)).days for m in range(1, 7)])
    semi_days = np.concatenate([month_starts, month_starts + 14])
    users.append(np.repeat(semi, semi_days.size))
    days.append(np.tile(semi_days, semi.size))
    gig = np.flatnonzero(schedule == 3)
    gaps = rng.integers(10, 75, size=(gig.size, 8))
    gig_days = np.cumsum(gaps, axis=1) - rng.integers(0, 20, size=(gig.size, 1))
    users.append(np.repeat(gig, 8))
    days.append(gig_days.ravel())
    user, day = np.concatenate(users), np.concatenate(days)
    keep = (day >= 0) & (day < DAYS)
    return user[keep], day[keep]


def generate(n_users: int, seed: int = 7) -> dict[str, pa.Table]:
    """Synthetic Plaid-style data for ``n_users`` as Arrow tables in the normalized schema."""
    rng = np.random.default_rng(seed)
    accounts, acc = _accounts(rng, n_users)
    labels = _Labels()
    rows = _Rows([], [], [], [], [])
    users = np.arange(n_users)
    checking = acc["checking"]

    # Income (v1 and v2 detailed names, all mapped to INCOME by the parser).
    pay_user, pay_day = _pay_days(rng, n_users)
    salary = rng.lognormal(7.6, 0.4, size=n_users)
    payroll = [
        labels.add(f"ACME CORP {k} PAYROLL", None, None, "INCOME", "INCOME_WAGES", raw)
        for k, raw in enumerate(["INCOME_WAGES", "INCOME_SALARY", "INCOME_GIG_ECONOMY"])
    ]
    rows.add(
        pay_user,
        checking[pay_user],
        pay_day,
        -np.round(salary[pay_user] * rng.normal(1, 0.05, pay_user.size), 2),
        np.array(payroll)[pay_user % 3],
    )

    # Rent (monthly, never a subscription).
    renter = np.flatnonzero(rng.random(n_users) < 0.7)
    rent = labels.add("PROPERTY MGMT RENT", "Greystar", None, "RENT_AND_UTILITIES", "RENT_AND_UTILITIES_RENT")
    rent_day = rng.integers(0, 3, renter.size)
    for month in range(6):
        rows.add(renter, checking[renter], rent_day + month * 30, np.round(salary[renter] * 0.9, 2), rent)

    # Subscriptions: 0-8 per user, monthly on a fixed day, ~8 % with one price change.
    sub_labels = [
        labels.add(raw, name, f"ent-{i}", prim, det)
        for i, (name, raw, _, prim, det) in enumerate(SUBSCRIPTIONS)
    ]
    prices = np.array([p for _, _, p, _, _ in SUBSCRIPTIONS])
    n_subs = rng.integers(0, 9, size=n_users)
    sub_user = np.repeat(users, n_subs)
    sub_kind = rng.integers(0, len(SUBSCRIPTIONS), size=sub_user.size)
    first = rng.integers(0, 30, size=sub_user.size)
    change_at = np.where(rng.random(sub_user.size) < 0.08, rng.integers(2, 5, size=sub_user.size), 99)
    card0 = acc["cards"][sub_user, 0]
    pay_from = np.where(card0 >= 0, card0, checking[sub_user])
    for month in range(6):
        price = prices[sub_kind] * np.where(month >= change_at, 1.25, 1.0)
        rows.add(
            sub_user,
            pay_from,
            first + month * 30 + rng.integers(-1, 2, sub_user.size).clip(0),
            np.round(price, 2),
            np.array(sub_labels)[sub_kind],
        )

    # Purchases: 60-150 a month per user (less the fixed ones), over ~30 favourite stores each.
    store_labels = np.array(
        [
            labels.add(f"{brand} #{s:04d} {city}", brand.title(), None, prim, det)
            for brand, prim, det, _ in BRANDS
            for s, city in zip(range(STORES_PER_BRAND), ["SF CA", "NY NY", "AUSTIN TX"] * 40, strict=True)
        ]
    )
    medians = np.repeat(np.array([m for *_, m in BRANDS]), STORES_PER_BRAND)
    favourites = rng.integers(0, store_labels.size, size=(n_users, FAVOURITES))
    per_user = (rng.uniform(60, 150, size=n_users) * 6).astype(np.int64) - 20
    buy_user = np.repeat(users, per_user)
    pick = (FAVOURITES * rng.random(buy_user.size) ** 2).astype(np.int64)  # skewed to a few favourites
    store = favourites[buy_user, pick]
    n_cards = acc["n_cards"][buy_user]
    which = (rng.random(buy_user.size) * np.maximum(n_cards, 1)).astype(np.int64)
    on_card = (n_cards > 0) & (rng.random(buy_user.size) < 0.65)
    account = np.where(on_card, acc["cards"][buy_user, np.minimum(which, 2)], checking[buy_user])
    amount = np.round(medians[store] * rng.lognormal(0, 0.45, size=buy_user.size), 2)
    refund = rng.random(buy_user.size) < 0.01
    rows.add(
        buy_user,
        account,
        rng.integers(0, DAYS, size=buy_user.size),
        np.where(refund, -amount, amount),
        store_labels[store],
    )

    _payments_and_fees(rng, rows, labels, acc, salary, n_users)
    return _tables(rng, accounts, rows, labels, acc, n_users)


def _payments_and_fees(
    rng: np.random.Generator,
    rows: _Rows,
    labels: _Labels,
    acc: dict[str, np.ndarray],
    salary: np.ndarray,
    n_users: int,
) -> None:
    checking = acc["checking"]
    cards = acc["cards"]
    pay_out = labels.add(
        "PAYMENT TO CREDIT CARD", None, None, "LOAN_PAYMENTS", "LOAN_PAYMENTS_CREDIT_CARD_PAYMENT"
    )
    pay_in = labels.add("PAYMENT THANK YOU", None, None, "LOAN_PAYMENTS", "LOAN_PAYMENTS_CREDIT_CARD_PAYMENT")
    interest = labels.add(
        "INTEREST CHARGE ON PURCHASES", None, None, "BANK_FEES", "BANK_FEES_INTEREST_CHARGE"
    )
    for slot in range(3):
        owner = np.flatnonzero(cards[:, slot] >= 0)
        card = cards[owner, slot]
        amount = np.round(rng.uniform(25, 900, owner.size), 2)
        revolving = rng.random(owner.size) < 0.35
        for month in range(6):
            day = 20 + month * 30 + slot
            rows.add(owner, checking[owner], day, amount, pay_out)
            rows.add(owner, card, day, -amount, pay_in)
            rows.add(
                owner[revolving],
                card[revolving],
                day + 5,
                np.round(rng.uniform(8, 60, revolving.sum()), 2),
                interest,
            )
    savers = np.flatnonzero((acc["savings"] >= 0) & (rng.random(n_users) < 0.6))
    to_savings = labels.add("TRANSFER TO SAVINGS", None, None, "TRANSFER_OUT", "TRANSFER_OUT_SAVINGS")
    from_checking = labels.add(
        "TRANSFER FROM CHECKING", None, None, "TRANSFER_IN", "TRANSFER_IN_ACCOUNT_TRANSFER"
    )
    earned = labels.add("INTEREST PAYMENT", None, None, "INCOME", "INCOME_INTEREST_EARNED")
    amount = np.round(rng.uniform(50, 500, savers.size), 2)
    for month in range(6):
        rows.add(savers, checking[savers], 3 + month * 30, amount, to_savings)
        rows.add(savers, acc["savings"][savers], 3 + month * 30, -amount, from_checking)
        rows.add(
            savers,
            acc["savings"][savers],
            28 + month * 30,
            -np.round(rng.uniform(0.5, 9, savers.size), 2),
            earned,
        )
    overdraft = labels.add("OVERDRAFT FEE", None, None, "BANK_FEES", "BANK_FEES_OVERDRAFT_FEES")
    od_user = np.flatnonzero(rng.random(n_users) < 0.08)
    rows.add(od_user, checking[od_user], rng.integers(0, DAYS, od_user.size), 35.0, overdraft)
    biz_user = np.flatnonzero(acc["business"] >= 0)
    supplies = labels.add(
        "OFFICE DEPOT #0091",
        "Office Depot",
        None,
        "GENERAL_MERCHANDISE",
        "GENERAL_MERCHANDISE_OFFICE_SUPPLIES",
    )
    for month in range(6):
        rows.add(
            biz_user,
            acc["business"][biz_user],
            10 + month * 30,
            np.round(rng.uniform(100, 2000, biz_user.size), 2),
            supplies,
        )
    del salary


def _tables(
    rng: np.random.Generator,
    accounts: pd.DataFrame,
    rows: _Rows,
    labels: _Labels,
    acc: dict[str, np.ndarray],
    n_users: int,
) -> dict[str, pa.Table]:
    user = np.concatenate(rows.user)
    account = np.concatenate(rows.account)
    day = np.concatenate(rows.day).clip(0, DAYS - 1)
    amount = np.concatenate(rows.amount)
    label = np.concatenate(rows.label)
    # per-user end dates differ by up to a week, as real uploads do
    shift = rng.integers(0, 7, n_users)
    dates = (np.datetime64(END) - (DAYS - 1) + day - shift[user]).astype("datetime64[D]")
    pending = day >= DAYS - 2
    pool = list(zip(*labels.rows, strict=True))
    account_ids = accounts["account_id"].to_numpy(object)
    user_ids = np.array([f"user-{u:06d}" for u in range(n_users)], dtype=object)

    def text(values: np.ndarray, index: np.ndarray) -> pa.Array:
        return pa.array(values, pa.string()).take(pa.array(index))

    transactions = pa.table(
        {
            "user_id": text(user_ids, user),
            "transaction_id": pa.array(np.char.add("tx-", np.arange(user.size).astype(str)), pa.string()),
            "account_id": text(account_ids, account),
            "date": pa.array(dates, pa.date32()),
            "authorized_date": pa.array(dates, pa.date32()),
            "amount": pa.array(amount, pa.float64()),
            "iso_currency_code": pa.array(np.full(user.size, "USD"), pa.string()),
            "name": text(np.array(pool[0], dtype=object), label),
            "merchant_name": text(np.array(pool[1], dtype=object), label),
            "merchant_entity_id": text(np.array(pool[2], dtype=object), label),
            "payment_channel": pa.array(np.full(user.size, "in store"), pa.string()),
            "category_primary": text(np.array(pool[3], dtype=object), label),
            "category_detailed": text(np.array(pool[4], dtype=object), label),
            "category_detailed_raw": text(np.array(pool[5], dtype=object), label),
            "pending": pa.array(pending, pa.bool_()),
        },
        schema=TABLES["transactions"],
    )
    cards = accounts[accounts["type"] == "credit"]
    minimum = np.round(np.maximum(25.0, cards["balance_current"].to_numpy() * 0.02), 2)
    end = pd.Timestamp(END)
    liabilities = pd.DataFrame(
        {
            "user_id": cards["user_id"].to_numpy(),
            "account_id": cards["account_id"].to_numpy(),
            "purchase_apr": np.round(rng.uniform(15, 30, len(cards)), 2),
            "interest_charge_amount": np.where(
                rng.random(len(cards)) < 0.3, np.round(rng.uniform(5, 80, len(cards)), 2), 0.0
            ),
            "is_overdue": rng.random(len(cards)) < 0.03,
            "last_payment_amount": minimum
            * np.where(rng.random(len(cards)) < 0.15, 1.0, rng.uniform(1.5, 10, len(cards))),
            "last_payment_date": (end - pd.to_timedelta(rng.integers(5, 25, len(cards)), unit="D")).date,
            "last_statement_balance": cards["balance_current"].to_numpy(),
            "last_statement_issue_date": (end - pd.Timedelta(days=20)).date(),
            "minimum_payment_amount": minimum,
            "next_payment_due_date": (end + pd.Timedelta(days=7)).date(),
        }
    )
    return {
        "accounts": pa.Table.from_pandas(accounts, schema=TABLES["accounts"], preserve_index=False),
        "transactions": transactions,
        "credit_liabilities": pa.Table.from_pandas(
            liabilities, schema=TABLES["credit_liabilities"], preserve_index=False
        ),
    }


def _batch(dataset: Dataset, rule_set: Any) -> tuple[float, float, pd.DataFrame, pd.DataFrame]:
    """(wall seconds, CPU seconds, signals, personas) for one batch run."""
    start, cpu = time.perf_counter(), time.process_time()
    signals = compute_signals(dataset)
    personas = assign_personas(signals, rule_set)
    return time.perf_counter() - start, time.process_time() - cpu, signals, personas


def _per_user(dataset: Dataset, user_ids: list[str], rule_set: Any) -> tuple[float, float, int]:
    """The straightforward way: one user's slice at a time (slicing is done before the clock starts).
    Returns (wall seconds, CPU seconds, transactions)."""
    slices = [dataset.for_users([u]) for u in user_ids]
    transactions = sum(len(s.transactions) for s in slices)
    start, cpu = time.perf_counter(), time.process_time()
    for part in slices:
        assign_personas(compute_signals(part), rule_set)
    return time.perf_counter() - start, time.process_time() - cpu, transactions


def _profile(dataset: Dataset, rule_set: Any) -> str:
    profiler = cProfile.Profile()
    profiler.enable()
    assign_personas(compute_signals(dataset), rule_set)
    profiler.disable()
    out = io.StringIO()
    pstats.Stats(profiler, stream=out).sort_stats("cumulative").print_stats(35)
    return out.getvalue()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--users", type=int, default=10_000)
    parser.add_argument("--baseline-users", type=int, default=500)
    parser.add_argument("--repeat", type=int, default=3, help="batch runs; the best is reported")
    parser.add_argument("--profile", action="store_true", help="print a cProfile of one batch run")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()

    t0 = time.perf_counter()
    tables = generate(args.users)
    generated = time.perf_counter() - t0
    t0 = time.perf_counter()
    dataset = Dataset.from_arrow(tables)
    load_s = time.perf_counter() - t0
    n_tx = len(dataset.transactions)
    rule_set = load_rule_set()
    print(
        f"generated {args.users:,} users, {n_tx:,} transactions in {generated:.1f} s; from_arrow {load_s:.2f} s"
    )

    if args.profile:
        print(_profile(dataset, rule_set))
    runs = [_batch(dataset, rule_set) for _ in range(args.repeat)]
    best = min(range(len(runs)), key=lambda i: runs[i][0])
    batch_s, batch_cpu, signals, personas = runs[best]
    batch_tps = n_tx / batch_s
    print(
        f"batch:    {batch_s:.2f} s wall ({batch_cpu:.2f} s CPU) for {n_tx:,} tx → {batch_tps:,.0f} tx/s"
        f" ({n_tx / batch_cpu:,.0f} tx/CPU-s), single process"
    )

    subset = dataset.user_ids()[: args.baseline_users]
    base_s, base_cpu, base_tx = _per_user(dataset, subset, rule_set)
    base_tps = base_tx / base_s
    print(
        f"per-user: {base_s:.2f} s wall ({base_cpu:.2f} s CPU) for {base_tx:,} tx ({len(subset)} users)"
        f" → {base_tps:,.0f} tx/s ({base_tx / base_cpu:,.0f} tx/CPU-s)"
    )
    print(f"speed-up: {batch_tps / base_tps:.1f}x (CPU: {(n_tx / batch_cpu) / (base_tx / base_cpu):.1f}x)")

    primary = personas["primary"].value_counts().to_dict()
    result = {
        "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {
            "cores": os.cpu_count(),
            "processes": 1,
            "load_average_1m": round(os.getloadavg()[0], 2),
            "python": platform.python_version(),
            "pandas": pd.__version__,
            "numpy": np.__version__,
        },
        "users": args.users,
        "transactions": n_tx,
        "transactions_per_user_month": round(n_tx / args.users / 6, 1),
        "load_from_arrow_s": round(load_s, 3),
        "batch": {
            "seconds": round(batch_s, 3),
            "cpu_seconds": round(batch_cpu, 3),
            "tx_per_s": round(batch_tps),
            "tx_per_cpu_s": round(n_tx / batch_cpu),
            "runs_s": [round(r[0], 3) for r in runs],
        },
        "per_user_baseline": {
            "users": len(subset),
            "transactions": base_tx,
            "seconds": round(base_s, 3),
            "cpu_seconds": round(base_cpu, 3),
            "tx_per_s": round(base_tps),
            "tx_per_cpu_s": round(base_tx / base_cpu),
        },
        "speedup_vs_baseline": round(batch_tps / base_tps, 1),
        "target_tx_per_s": 1_000_000,
        "signal_rows": len(signals),
        "primary_personas": {str(k): int(v) for k, v in primary.items()},
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
