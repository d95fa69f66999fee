"""Hand-built datasets with known answers for the signal, persona and report tests."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date, timedelta
from typing import Any

import pandas as pd
import pytest

from spendsense_features.domain.dataset import Dataset
from spendsense_features.domain.signals import compute_signals
from spendsense_shared.testing.fakes import load_beside

ANCHOR = date(2024, 6, 30)  # the as-of date of most hand-built datasets


def day(offset: int | date) -> date:
    """A date given as days relative to ``ANCHOR`` (0 = the as-of date, -1 = the day before)."""
    return offset if isinstance(offset, date) else ANCHOR + timedelta(days=offset)


class Builder:
    """Accumulates accounts, transactions and liabilities for one or more users. The class itself is
    the ``builder`` fixture, so tests also reach ``builder.ANCHOR``, ``builder.day`` and
    ``builder.row_of`` through it (test modules cannot import conftest under importlib mode)."""

    ANCHOR = ANCHOR
    day = staticmethod(day)

    @staticmethod
    def row_of(signals: pd.DataFrame, window: str = "30d", user: str = "u1") -> dict[str, Any]:
        return signal_row(signals, window, user)

    def __init__(self, user: str = "u1") -> None:
        self.user = user
        self.accounts: list[dict[str, Any]] = []
        self.transactions: list[dict[str, Any]] = []
        self.liabilities: list[dict[str, Any]] = []

    def account(
        self,
        account_id: str,
        type: str = "depository",
        subtype: str = "checking",
        balance: float | None = 0.0,
        limit: float | None = None,
        holder: str = "individual",
        user: str | None = None,
        **extra: Any,
    ) -> Builder:
        self.accounts.append(
            {
                "user_id": user or self.user,
                "account_id": account_id,
                "name": extra.pop("name", account_id.title()),
                "type": type,
                "subtype": subtype,
                "holder_category": holder,
                "balance_current": balance,
                "balance_limit": limit,
                "mask": extra.pop("mask", "0000"),
                **extra,
            }
        )
        return self

    def checking(self, balance: float = 0.0, account_id: str = "chk") -> Builder:
        return self.account(account_id, balance=balance)

    def card(self, balance: float, limit: float | None, account_id: str = "cc", **extra: Any) -> Builder:
        return self.account(account_id, "credit", "credit card", balance=balance, limit=limit, **extra)

    def tx(
        self,
        account_id: str,
        when: int | date,
        amount: float,
        name: str = "SHOP",
        primary: str = "GENERAL_MERCHANDISE",
        detailed: str | None = None,
        merchant: str | None = None,
        entity: str | None = None,
        raw: str | None = None,
        pending: bool = False,
        user: str | None = None,
    ) -> Builder:
        detailed = detailed or f"{primary}_OTHER"
        self.transactions.append(
            {
                "user_id": user or self.user,
                "transaction_id": f"t{len(self.transactions) + 1}",
                "account_id": account_id,
                "date": day(when),
                "amount": amount,
                "name": name,
                "merchant_name": merchant,
                "merchant_entity_id": entity,
                "category_primary": primary,
                "category_detailed": detailed,
                "category_detailed_raw": raw or detailed,
                "pending": pending,
            }
        )
        return self

    def series(
        self, account_id: str, days: Iterable[int | date], amounts: Iterable[float] | float, **kw: Any
    ) -> Builder:
        days = list(days)
        amounts = [amounts] * len(days) if isinstance(amounts, int | float) else list(amounts)
        for when, amount in zip(days, amounts, strict=True):
            self.tx(account_id, when, amount, **kw)
        return self

    def payroll(
        self, days: Iterable[int | date], amount: float | Iterable[float] = 2000.0, **kw: Any
    ) -> Builder:
        amounts = amount if not isinstance(amount, int | float) else [amount] * len(list(days))
        kw = {"name": "ACME CORP PAYROLL", "primary": "INCOME", "detailed": "INCOME_WAGES", **kw}
        return self.series(kw.pop("account_id", "chk"), list(days), [-a for a in amounts], **kw)

    def liability(self, account_id: str = "cc", **fields: Any) -> Builder:
        self.liabilities.append({"user_id": self.user, "account_id": account_id, **fields})
        return self

    def dataset(self) -> Dataset:
        return Dataset(
            accounts=pd.DataFrame(self.accounts),
            transactions=pd.DataFrame(self.transactions),
            credit_liabilities=pd.DataFrame(self.liabilities),
        )

    def signals(self, as_of: Any = ANCHOR) -> pd.DataFrame:
        return compute_signals(self.dataset(), as_of=as_of)

    def row(self, window: str = "30d", as_of: Any = ANCHOR, user: str | None = None) -> dict[str, Any]:
        return signal_row(self.signals(as_of), window, user or self.user)


def signal_row(signals: pd.DataFrame, window: str = "30d", user: str = "u1") -> dict[str, Any]:
    match = signals[(signals["user_id"] == user) & (signals["window"] == window)]
    assert len(match) == 1, f"expected one row for {user}/{window}, got {len(match)}"
    return match.iloc[0].to_dict()


@pytest.fixture
def builder() -> type[Builder]:
    return Builder


# --- Handler unit tests: the in-memory unit of work and data bucket -------------------------------------


fakes = load_beside(__file__, "fakes.py", "spendsense_features_unit_fakes")


@pytest.fixture
def uow() -> Any:
    """A fresh ``FakeFeaturesUnitOfWork``."""
    return fakes.FakeFeaturesUnitOfWork()
