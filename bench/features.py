"""Features throughput: signals + personas for many users at once vs. one user at a time.

Generates N synthetic users in memory (6 months each: pay cheques on four schedules incl. irregular
gig income, rent, 0-8 subscriptions some with a price change, card payments, interest, savings
transfers, overdraft fees, 60-150 purchases a month over a few thousand store-numbered merchants,
refunds, pending and business-account noise), loads them through the production Arrow path
(``Dataset.from_arrow``), then times in the same run:

  * batch    - ``compute_signals`` + ``assign_personas`` over every user at once, best of --repeat;
  * baseline - the same two functions called once per user on that user's own slice (the slices are
               cut before the clock starts), over --baseline-users users.

Both are measured twice: with plain string columns, and with dictionary-encoded string columns (what
``pyarrow.parquet.read_table(..., read_dictionary=[...])`` returns for the Parquet snapshot; they
become pandas categoricals whose codes the signal code uses without re-hashing).

Throughput is transactions per second in one process on one core (the machine has 2; nothing here
is parallel). Wall and CPU time are both reported, with the load average, because the machine is
shared. Writes bench/results/features.json.

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
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from spendsense_features.domain.dataset import Dataset
from spendsense_features.domain.rules import RuleSet, assign_personas, load_rule_set
from spendsense_features.domain.signals import compute_signals
from spendsense_shared.dataset import TABLES

RESULTS = Path(__file__).parent / "results" / "features.json"
DAYS = 182
MONTHS = 6
END = date(2025, 6, 30)
TARGET_TX_PER_S = 1_000_000

# (merchant name, raw description, price, primary, detailed)
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
# (brand, primary, detailed, median purchase)
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
CITIES = ("SF CA", "NY NY", "AUSTIN TX")
FAVOURITES = 30  # stores a user shops at


# --------------------------------------------------------------------------------------------------
# Generator


@dataclass
class _Builder:
    """Column buffers for generated transactions, plus a pool of descriptions/categories they use."""

    user: list[np.ndarray] = field(default_factory=list)
    account: list[np.ndarray] = field(default_factory=list)
    day: list[np.ndarray] = field(default_factory=list)
    amount: list[np.ndarray] = field(default_factory=list)
    label: list[np.ndarray] = field(default_factory=list)
    # (name, merchant_name, merchant_entity_id, primary, detailed, detailed_raw)
    labels: list[tuple[str, str | None, str | None, str, str, str]] = field(default_factory=list)

    def describe(
        self,
        name: str,
        primary: str,
        detailed: str,
        merchant: str | None = None,
        entity: str | None = None,
        raw: str = "",
    ) -> int:
        self.labels.append((name, merchant, entity, primary, detailed, raw or detailed))
        return len(self.labels) - 1

    def add(self, user: Any, account: Any, day: Any, amount: Any, label: Any) -> None:
        n = max(np.size(v) for v in (user, account, day, amount, label))
        for buffer, value, dtype in (
            (self.user, user, np.int64),
            (self.account, account, np.int64),
            (self.day, day, np.int64),
            (self.amount, amount, float),
            (self.label, label, np.int64),
        ):
            buffer.append(np.broadcast_to(np.asarray(value, dtype=dtype), n))


@dataclass
class _Accounts:
    frame: pd.DataFrame
    checking: np.ndarray  # account row per user
    savings: np.ndarray  # -1 = none
    business: np.ndarray  # -1 = none
    cards: np.ndarray  # (users, 3) account rows, -1 = none
    n_cards: np.ndarray


def _accounts(rng: np.random.Generator, n_users: int) -> _Accounts:
    """Checking for everyone, savings for 70 %, 0-3 cards, a business account for 5 %."""
    has_savings = rng.random(n_users) < 0.7
    n_cards = rng.choice([0, 1, 2, 3], p=[0.2, 0.4, 0.3, 0.1], size=n_users)
    has_business = rng.random(n_users) < 0.05
    kinds: list[
        tuple[int, str, str, str, float, float | None]
    ] = []  # user, type, subtype, holder, balance, limit
    checking = np.empty(n_users, dtype=np.int64)
    savings = np.full(n_users, -1, dtype=np.int64)
    business = np.full(n_users, -1, dtype=np.int64)
    cards = np.full((n_users, 3), -1, dtype=np.int64)
    limits = rng.choice([1000.0, 2500.0, 5000.0, 8000.0, 12000.0, 20000.0], size=(n_users, 3))
    used = rng.beta(2, 3, size=(n_users, 3))
    for u in range(n_users):
        checking[u] = len(kinds)
        kinds.append((u, "depository", "checking", "individual", round(rng.lognormal(7.5, 1.0), 2), None))
        if has_savings[u]:
            savings[u] = len(kinds)
            kinds.append((u, "depository", "savings", "individual", round(rng.lognormal(8.3, 1.2), 2), None))
        for slot in range(n_cards[u]):
            cards[u, slot] = len(kinds)
            limit = float(limits[u, slot])
            kinds.append((u, "credit", "credit card", "individual", round(limit * used[u, slot], 2), limit))
        if has_business[u]:
            business[u] = len(kinds)
            kinds.append((u, "depository", "checking", "business", 25000.0, None))
    user, kind, subtype, holder, balance, limits_ = (list(c) for c in zip(*kinds, strict=True))
    frame = pd.DataFrame(
        {
            "user_id": [f"user-{u:06d}" for u in user],
            "account_id": [f"acc-{i:07d}" for i in range(len(kinds))],
            "name": [f"{s.title()} {i % 10}" for i, s in enumerate(subtype)],
            "official_name": None,
            "type": kind,
            "subtype": subtype,
            "holder_category": holder,
            "balance_available": [
                b if k == "depository" else None for b, k in zip(balance, kind, strict=True)
            ],
            "balance_current": balance,
            "balance_limit": limits_,
            "iso_currency_code": "USD",
            "mask": [f"{m:04d}" for m in rng.integers(1000, 9999, len(kinds))],
        }
    )
    return _Accounts(frame, checking, savings, business, cards, n_cards)


def _income(rng: np.random.Generator, b: _Builder, acc: _Accounts, n_users: int) -> np.ndarray:
    """Pay cheques: bi-weekly 45 %, semi-monthly 20 %, monthly 20 %, irregular gig work 15 %."""
    schedule = rng.choice(4, p=[0.45, 0.2, 0.2, 0.15], size=n_users)
    salary = rng.lognormal(7.6, 0.4, size=n_users)
    users, days = [], []
    offsets = rng.integers(0, 14, size=n_users)
    for kind, step in ((0, 14), (2, 30)):
        who = np.flatnonzero(schedule == kind)
        grid = np.arange(0, DAYS, step)
        users.append(np.repeat(who, grid.size))
        days.append((offsets[who][:, None] % step + grid[None, :]).ravel())
    semi = np.flatnonzero(schedule == 1)
    month_starts = np.array([(date(2025, m, 1) - date(2025, 1, 1)).days for m in range(1, 7)])
    users.append(np.repeat(semi, 2 * MONTHS))
    days.append(np.tile(np.concatenate([month_starts, month_starts + 14]), semi.size))
    gig = np.flatnonzero(schedule == 3)
    gig_days = np.cumsum(rng.integers(10, 75, size=(gig.size, 8)), axis=1) - rng.integers(
        0, 20, (gig.size, 1)
    )
    users.append(np.repeat(gig, 8))
    days.append(gig_days.ravel())
    user, day = np.concatenate(users), np.concatenate(days)
    keep = (day >= 0) & (day < DAYS)
    user, day = user[keep], day[keep]
    # v1 and v2 detailed names: the parser maps INCOME_SALARY / INCOME_GIG_ECONOMY to INCOME
    labels = np.array(
        [
            b.describe(f"ACME CORP {k} PAYROLL", "INCOME", "INCOME_WAGES", raw=raw)
            for k, raw in enumerate(["INCOME_WAGES", "INCOME_SALARY", "INCOME_GIG_ECONOMY"])
        ]
    )
    amount = -np.round(salary[user] * rng.normal(1, 0.05, user.size), 2)
    b.add(user, acc.checking[user], day, amount, labels[user % 3])
    return salary


def _bills(rng: np.random.Generator, b: _Builder, acc: _Accounts, salary: np.ndarray, n_users: int) -> None:
    """Rent for 70 %; 0-8 subscriptions each, monthly, ~8 % of them with one 25 % price rise."""
    renter = np.flatnonzero(rng.random(n_users) < 0.7)
    rent = b.describe("PROPERTY MGMT RENT", "RENT_AND_UTILITIES", "RENT_AND_UTILITIES_RENT", "Greystar")
    rent_day = rng.integers(0, 3, renter.size)
    for month in range(MONTHS):
        b.add(renter, acc.checking[renter], rent_day + month * 30, np.round(salary[renter] * 0.9, 2), rent)

    labels = np.array(
        [
            b.describe(raw, prim, det, name, f"ent-{i}")
            for i, (name, raw, _, prim, det) in enumerate(SUBSCRIPTIONS)
        ]
    )
    prices = np.array([price for _, _, price, _, _ in SUBSCRIPTIONS])
    user = np.repeat(np.arange(n_users), rng.integers(0, 9, size=n_users))
    kind = rng.integers(0, len(SUBSCRIPTIONS), size=user.size)
    first = rng.integers(0, 30, size=user.size)
    change_at = np.where(rng.random(user.size) < 0.08, rng.integers(2, 5, size=user.size), 99)
    first_card = acc.cards[user, 0]
    paid_from = np.where(first_card >= 0, first_card, acc.checking[user])
    for month in range(MONTHS):
        price = np.round(prices[kind] * np.where(month >= change_at, 1.25, 1.0), 2)
        jitter = rng.integers(-1, 2, user.size)
        b.add(user, paid_from, (first + month * 30 + jitter).clip(0), price, labels[kind])


def _purchases(rng: np.random.Generator, b: _Builder, acc: _Accounts, n_users: int) -> None:
    """60-150 purchases a month per user over ~30 favourite stores (skewed), 65 % on a card if any."""
    labels = np.array(
        [
            b.describe(f"{brand} #{store:04d} {CITIES[store % 3]}", prim, det, brand.title())
            for brand, prim, det, _ in BRANDS
            for store in range(STORES_PER_BRAND)
        ]
    )
    medians = np.repeat(np.array([m for *_, m in BRANDS]), STORES_PER_BRAND)
    favourites = rng.integers(0, labels.size, size=(n_users, FAVOURITES))
    per_user = (rng.uniform(60, 150, size=n_users) * MONTHS).astype(np.int64) - 20
    user = np.repeat(np.arange(n_users), per_user)
    store = favourites[user, (FAVOURITES * rng.random(user.size) ** 2).astype(np.int64)]
    n_cards = acc.n_cards[user]
    slot = np.minimum((rng.random(user.size) * np.maximum(n_cards, 1)).astype(np.int64), 2)
    on_card = (n_cards > 0) & (rng.random(user.size) < 0.65)
    account = np.where(on_card, acc.cards[user, slot], acc.checking[user])
    amount = np.round(medians[store] * rng.lognormal(0, 0.45, size=user.size), 2)
    refund = rng.random(user.size) < 0.01
    b.add(
        user, account, rng.integers(0, DAYS, size=user.size), np.where(refund, -amount, amount), labels[store]
    )


def _cards(rng: np.random.Generator, b: _Builder, acc: _Accounts) -> None:
    """Monthly card payments from checking (both legs) and interest for revolving cards."""
    pay_out = b.describe("PAYMENT TO CREDIT CARD", "LOAN_PAYMENTS", "LOAN_PAYMENTS_CREDIT_CARD_PAYMENT")
    pay_in = b.describe("PAYMENT THANK YOU", "LOAN_PAYMENTS", "LOAN_PAYMENTS_CREDIT_CARD_PAYMENT")
    interest = b.describe("INTEREST CHARGE ON PURCHASES", "BANK_FEES", "BANK_FEES_INTEREST_CHARGE")
    for slot in range(3):
        owner = np.flatnonzero(acc.cards[:, slot] >= 0)
        card = acc.cards[owner, slot]
        amount = np.round(rng.uniform(25, 900, owner.size), 2)
        revolving = rng.random(owner.size) < 0.35
        for month in range(MONTHS):
            day = 20 + month * 30 + slot
            b.add(owner, acc.checking[owner], day, amount, pay_out)
            b.add(owner, card, day, -amount, pay_in)
            charged = np.round(rng.uniform(8, 60, int(revolving.sum())), 2)
            b.add(owner[revolving], card[revolving], day + 5, charged, interest)


def _savings_fees_business(rng: np.random.Generator, b: _Builder, acc: _Accounts, n_users: int) -> None:
    savers = np.flatnonzero((acc.savings >= 0) & (rng.random(n_users) < 0.6))
    out = b.describe("TRANSFER TO SAVINGS", "TRANSFER_OUT", "TRANSFER_OUT_SAVINGS")
    into = b.describe("TRANSFER FROM CHECKING", "TRANSFER_IN", "TRANSFER_IN_ACCOUNT_TRANSFER")
    earned = b.describe("INTEREST PAYMENT", "INCOME", "INCOME_INTEREST_EARNED")
    amount = np.round(rng.uniform(50, 500, savers.size), 2)
    for month in range(MONTHS):
        b.add(savers, acc.checking[savers], 3 + month * 30, amount, out)
        b.add(savers, acc.savings[savers], 3 + month * 30, -amount, into)
        b.add(
            savers,
            acc.savings[savers],
            28 + month * 30,
            -np.round(rng.uniform(0.5, 9, savers.size), 2),
            earned,
        )
    overdraft = b.describe("OVERDRAFT FEE", "BANK_FEES", "BANK_FEES_OVERDRAFT_FEES")
    fee_user = np.flatnonzero(rng.random(n_users) < 0.08)
    b.add(fee_user, acc.checking[fee_user], rng.integers(0, DAYS, fee_user.size), 35.0, overdraft)
    owner = np.flatnonzero(acc.business >= 0)
    supplies = b.describe("OFFICE DEPOT #0091", "GENERAL_MERCHANDISE", "GENERAL_MERCHANDISE_OFFICE_SUPPLIES")
    for month in range(MONTHS):
        spend = np.round(rng.uniform(100, 2000, owner.size), 2)
        b.add(owner, acc.business[owner], 10 + month * 30, spend, supplies)


def _liabilities(rng: np.random.Generator, accounts: pd.DataFrame) -> pd.DataFrame:
    cards = accounts[accounts["type"] == "credit"]
    n = len(cards)
    minimum = np.round(np.maximum(25.0, cards["balance_current"].to_numpy() * 0.02), 2)
    end = pd.Timestamp(END)
    return pd.DataFrame(
        {
            "user_id": cards["user_id"].to_numpy(),
            "account_id": cards["account_id"].to_numpy(),
            "purchase_apr": np.round(rng.uniform(15, 30, n), 2),
            "interest_charge_amount": np.where(rng.random(n) < 0.3, np.round(rng.uniform(5, 80, n), 2), 0.0),
            "is_overdue": rng.random(n) < 0.03,
            "last_payment_amount": minimum * np.where(rng.random(n) < 0.15, 1.0, rng.uniform(1.5, 10, n)),
            "last_payment_date": (end - pd.to_timedelta(rng.integers(5, 25, n), unit="D")).date,
            "last_statement_balance": cards["balance_current"].to_numpy(),
            "last_statement_issue_date": (end - pd.Timedelta(days=20)).date(),
            "minimum_payment_amount": minimum,
            "next_payment_due_date": (end + pd.Timedelta(days=7)).date(),
        }
    )


def _transactions(rng: np.random.Generator, b: _Builder, accounts: pd.DataFrame, n_users: int) -> pa.Table:
    user = np.concatenate(b.user)
    day = np.concatenate(b.day).clip(0, DAYS - 1)
    shift = rng.integers(0, 7, n_users)  # uploads end on different days
    # One upload per user: rows grouped by user, then by date, like concatenated uploads.
    order = np.lexsort((day, user))
    user, day = user[order], day[order]
    account = np.concatenate(b.account)[order]
    label = np.concatenate(b.label)[order]
    dates = (np.datetime64(END) - (DAYS - 1) + day - shift[user]).astype("datetime64[D]")
    columns = list(zip(*b.labels, strict=True))
    user_ids = np.array([f"user-{u:06d}" for u in range(n_users)], dtype=object)

    def text(pool: Any, index: np.ndarray) -> pa.Array:
        return pa.array(np.asarray(pool, dtype=object), pa.string()).take(pa.array(index))

    return pa.table(
        {
            "user_id": text(user_ids, user),
            "transaction_id": pc.binary_join_element_wise(
                "tx-", pa.array(np.arange(user.size)).cast(pa.string()), ""
            ),
            "account_id": text(accounts["account_id"].to_numpy(object), account),
            "date": pa.array(dates, pa.date32()),
            "authorized_date": pa.array(dates, pa.date32()),
            "amount": pa.array(np.concatenate(b.amount)[order], pa.float64()),
            "iso_currency_code": text(["USD"], np.zeros(user.size, dtype=np.int64)),
            "name": text(columns[0], label),
            "merchant_name": text(columns[1], label),
            "merchant_entity_id": text(columns[2], label),
            "payment_channel": text(["in store"], np.zeros(user.size, dtype=np.int64)),
            "category_primary": text(columns[3], label),
            "category_detailed": text(columns[4], label),
            "category_detailed_raw": text(columns[5], label),
            "pending": pa.array(day >= DAYS - 2),  # the last two days are still pending
        },
        schema=TABLES["transactions"],
    )


def generate(n_users: int, seed: int = 7) -> dict[str, pa.Table]:
    """Synthetic Plaid-style data for ``n_users`` as Arrow tables in the normalized schema."""
    rng = np.random.default_rng(seed)
    acc = _accounts(rng, n_users)
    b = _Builder()
    salary = _income(rng, b, acc, n_users)
    _bills(rng, b, acc, salary, n_users)
    _purchases(rng, b, acc, n_users)
    _cards(rng, b, acc)
    _savings_fees_business(rng, b, acc, n_users)
    return {
        "accounts": pa.Table.from_pandas(acc.frame, schema=TABLES["accounts"], preserve_index=False),
        "transactions": _transactions(rng, b, acc.frame, n_users),
        "credit_liabilities": pa.Table.from_pandas(
            _liabilities(rng, acc.frame), schema=TABLES["credit_liabilities"], preserve_index=False
        ),
    }


# Low-cardinality text columns worth reading dictionary-encoded (not transaction_id: unique per row).
DICTIONARY_COLUMNS = frozenset(
    {
        "user_id",
        "account_id",
        "name",
        "merchant_name",
        "merchant_entity_id",
        "iso_currency_code",
        "payment_channel",
        "category_primary",
        "category_detailed",
        "category_detailed_raw",
    }
)


def dictionary_encoded(tables: dict[str, pa.Table]) -> dict[str, pa.Table]:
    """The transactions as a Parquet read with ``read_dictionary=DICTIONARY_COLUMNS`` gives them
    (Parquet stores such columns dictionary-encoded; reading them so costs no hashing)."""
    table = tables["transactions"]
    columns = [
        pc.dictionary_encode(table[col].combine_chunks()) if col in DICTIONARY_COLUMNS else table[col]
        for col in table.column_names
    ]
    return {**tables, "transactions": pa.table(columns, names=table.column_names)}


# --------------------------------------------------------------------------------------------------
# Measurement


def _batch(dataset: Dataset, rule_set: RuleSet) -> tuple[float, float, pd.DataFrame]:
    """(wall seconds, CPU seconds, personas) for one batch run."""
    start, cpu = time.perf_counter(), time.process_time()
    personas = assign_personas(compute_signals(dataset), rule_set)
    return time.perf_counter() - start, time.process_time() - cpu, personas


def _per_user(dataset: Dataset, user_ids: list[str], rule_set: RuleSet) -> tuple[float, float, int]:
    """The straightforward way: one user's slice at a time. Returns (wall s, CPU s, transactions)."""
    slices = [dataset.for_users([u]) for u in user_ids]
    transactions = sum(len(s.transactions) for s in slices)
    start, cpu = time.perf_counter(), time.process_time()
    for part in slices:
        assign_personas(compute_signals(part), rule_set)
    return time.perf_counter() - start, time.process_time() - cpu, transactions


def _profile(dataset: Dataset, rule_set: RuleSet) -> str:
    profiler = cProfile.Profile()
    profiler.enable()
    assign_personas(compute_signals(dataset), rule_set)
    profiler.disable()
    out = io.StringIO()
    pstats.Stats(profiler, stream=out).sort_stats("tottime").print_stats(25)
    return out.getvalue()


def _measure_batch(
    label: str, dataset: Dataset, rule_set: RuleSet, repeat: int, load_s: float
) -> dict[str, Any]:
    runs = [_batch(dataset, rule_set) for _ in range(repeat)]
    best = min(range(repeat), key=lambda i: runs[i][0])
    wall, cpu, personas = runs[best]
    n_tx = len(dataset.transactions)
    print(
        f"batch ({label}): {wall:.2f} s wall, {cpu:.2f} s CPU for {n_tx:,} tx"
        f" -> {n_tx / wall:,.0f} tx/s ({n_tx / cpu:,.0f} per CPU-second);"
        f" runs {[round(r[0], 2) for r in runs]}"
    )
    return {
        "seconds": round(wall, 3),
        "cpu_seconds": round(cpu, 3),
        "tx_per_s": round(n_tx / wall),
        "tx_per_cpu_s": round(n_tx / cpu),
        "runs_s": [round(r[0], 3) for r in runs],
        "median_tx_per_s": round(n_tx / sorted(r[0] for r in runs)[len(runs) // 2]),
        # counting Dataset.from_arrow too (the Arrow → pandas conversion)
        "tx_per_s_including_load": round(n_tx / (wall + load_s)),
        "primary_personas": {str(k): int(v) for k, v in personas["primary"].value_counts().items()},
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--users", type=int, default=10_000)
    parser.add_argument("--baseline-users", type=int, default=500)
    parser.add_argument("--repeat", type=int, default=3, help="batch runs per mode; the fastest is reported")
    parser.add_argument("--profile", action="store_true", help="print a cProfile of one batch run")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()

    t0 = time.perf_counter()
    tables = generate(args.users)
    generated = time.perf_counter() - t0
    t0 = time.perf_counter()
    dataset = Dataset.from_arrow(tables)
    load_plain = time.perf_counter() - t0
    encoded = dictionary_encoded(tables)
    t0 = time.perf_counter()
    categorical = Dataset.from_arrow(encoded)
    load_dict = time.perf_counter() - t0
    n_tx = len(dataset.transactions)
    rule_set = load_rule_set()
    print(f"generated {args.users:,} users, {n_tx:,} transactions in {generated:.1f} s")
    print(f"from_arrow: {load_plain:.2f} s (strings), {load_dict:.2f} s (dictionary-encoded)")

    if args.profile:
        print(_profile(dataset, rule_set))
    _batch(dataset, rule_set)  # warm-up: first-touch page faults and lazy imports are not throughput
    plain = _measure_batch("strings", dataset, rule_set, args.repeat, load_plain)
    dictionary = _measure_batch("dictionary", categorical, rule_set, args.repeat, load_dict)

    subset = dataset.user_ids()[: args.baseline_users]
    base_wall, base_cpu, base_tx = _per_user(dataset, subset, rule_set)
    base_tps = base_tx / base_wall
    print(
        f"per-user baseline: {base_wall:.2f} s wall, {base_cpu:.2f} s CPU for {base_tx:,} tx"
        f" of {len(subset)} users -> {base_tps:,.0f} tx/s ({base_tx / base_cpu:,.0f} per CPU-second)"
    )
    print(
        f"speed-up vs per-user: {plain['tx_per_s'] / base_tps:.1f}x (strings),"
        f" {dictionary['tx_per_s'] / base_tps:.1f}x (dictionary); target {TARGET_TX_PER_S:,} tx/s"
    )

    result = {
        "measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {
            "cores": os.cpu_count(),
            "processes": 1,
            "threads_used": 1,
            "load_average_1m_at_end": round(os.getloadavg()[0], 2),
            "python": platform.python_version(),
            "pandas": pd.__version__,
            "numpy": np.__version__,
            "pyarrow": pa.__version__,
        },
        "users": args.users,
        "transactions": n_tx,
        "transactions_per_user_month": round(n_tx / args.users / MONTHS, 1),
        "from_arrow_s": {"strings": round(load_plain, 3), "dictionary": round(load_dict, 3)},
        "batch_strings": plain,
        "batch_dictionary": dictionary,
        "per_user_baseline": {
            "users": len(subset),
            "transactions": base_tx,
            "seconds": round(base_wall, 3),
            "cpu_seconds": round(base_cpu, 3),
            "tx_per_s": round(base_tps),
            "tx_per_cpu_s": round(base_tx / base_cpu),
        },
        "speedup_vs_per_user": {
            "strings": round(plain["tx_per_s"] / base_tps, 1),
            "dictionary": round(dictionary["tx_per_s"] / base_tps, 1),
        },
        "target_tx_per_s": TARGET_TX_PER_S,
        "target_met": {
            "strings": plain["tx_per_s"] >= TARGET_TX_PER_S,
            "dictionary": dictionary["tx_per_s"] >= TARGET_TX_PER_S,
        },
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
