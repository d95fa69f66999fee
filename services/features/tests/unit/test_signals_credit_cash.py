"""Credit, cash-flow and general (windowing, exclusions) signals on hand-built datasets."""

from __future__ import annotations

from datetime import date, timedelta

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from spendsense_features.domain.dataset import Dataset
from spendsense_features.domain.signals import COLUMNS, DAYS_PER_MONTH, SIGNAL_SCHEMA, compute_signals
from spendsense_shared.dataset import TABLES

# --------------------------------------------------------------------------------------------------
# Credit


def test_utilization_exactly_half_reaches_the_50_flag(builder):
    row = builder().card(2500, 5000, name="Visa", mask="4523").row()
    assert row["credit.max_utilization"] == 0.5
    assert row["credit.flag_30"]
    assert row["credit.flag_50"]
    assert not row["credit.flag_80"]
    [card] = row["credit.cards"]
    assert card["name"] == "Visa"
    assert card["mask"] == "4523"
    assert card["utilization"] == 0.5
    assert card["flags"] == ["30", "50"]
    assert card["balance"] == 2500
    assert card["limit"] == 5000


def test_utilization_just_below_half_does_not_reach_the_50_flag(builder):
    row = builder().card(2499.5, 5000).row()
    assert row["credit.max_utilization"] == pytest.approx(0.4999)
    assert row["credit.flag_30"]
    assert not row["credit.flag_50"]
    assert row["credit.cards"][0]["flags"] == ["30"]


def test_several_cards_and_a_missing_limit(builder):
    b = builder().card(900, 1000, "a").card(100, None, "b").card(0, 2000, "c")
    row = b.row()
    assert row["credit.max_utilization"] == pytest.approx(0.9)
    assert row["credit.flag_80"]
    assert row["credit.card_count"] == 3
    by_id = {c["account_id"]: c for c in row["credit.cards"]}
    assert by_id["b"]["utilization"] is None
    assert by_id["b"]["flags"] == []
    assert by_id["b"]["limit"] is None
    assert by_id["c"]["utilization"] == 0.0


def test_no_limit_on_any_card_gives_null_utilization(builder):
    row = builder().card(500, None).row()
    assert pd.isna(row["credit.max_utilization"])
    assert not row["credit.flag_30"]
    assert row["credit.card_count"] == 1


def test_no_cards_at_all(builder):
    row = builder().checking(100).row()
    assert pd.isna(row["credit.max_utilization"])
    assert not (row["credit.flag_30"])
    assert not (row["credit.flag_50"])
    assert not (row["credit.flag_80"])
    assert row["credit.cards"] == []
    assert row["credit.card_count"] == 0
    assert row["credit.interest_charges"] == 0
    assert not row["credit.minimum_payment_only"]
    assert not row["credit.overdue"]


def test_credit_balance_in_credit_is_zero_utilization(builder):
    assert builder().card(-50, 1000).row()["credit.max_utilization"] == 0.0


def test_interest_from_transactions_in_the_window_and_from_liabilities(builder):
    b = builder().card(1000, 5000, "a").card(1000, 5000, "b")
    b.tx("a", -5, 25.5, "INTEREST CHARGE", "BANK_FEES", "BANK_FEES_INTEREST_CHARGE")
    b.tx("a", -40, 20.0, "INTEREST CHARGE", "BANK_FEES", "BANK_FEES_INTEREST_CHARGE")
    b.liability("a", interest_charge_amount=99.0)  # ignored: the card has interest transactions
    b.liability("b", interest_charge_amount=12.0)  # no interest transactions: APR data counts
    signals = b.signals()
    short, long = builder.row_of(signals, "30d"), builder.row_of(signals, "180d")
    assert short["credit.interest_charges"] == pytest.approx(37.5)
    assert long["credit.interest_charges"] == pytest.approx(57.5)
    by_id = {c["account_id"]: c for c in short["credit.cards"]}
    assert by_id["a"]["interest_charges"] == 25.5
    assert by_id["b"]["interest_charges"] == 12.0


def test_v2_interest_charge_category(builder):
    b = (
        builder()
        .card(100, 5000)
        .tx("cc", -1, 9.0, "INTEREST", "BANK_FEES", "BANK_FEES_OTHER", raw="INTEREST_CHARGE")
    )
    assert b.row()["credit.interest_charges"] == 9.0


def _card_payment(b, amount: float, when: int = -10):
    return b.tx(
        "cc", when, -amount, "PAYMENT THANK YOU", "LOAN_PAYMENTS", "LOAN_PAYMENTS_CREDIT_CARD_PAYMENT"
    )


def test_minimum_payment_only_within_ten_percent(builder):
    b = builder().card(3000, 10000, apr=None).liability("cc", minimum_payment_amount=60.0, purchase_apr=24.99)
    row = _card_payment(b, 65.9).row()  # 9.8 % above the minimum
    assert row["credit.minimum_payment_only"]
    [card] = row["credit.cards"]
    assert card["minimum_payment_only"]
    assert card["apr"] == 24.99
    assert card["minimum_payment"] == 60.0


def test_paying_more_than_the_minimum_is_not_minimum_only(builder):
    b = builder().card(3000, 10000).liability("cc", minimum_payment_amount=60.0)
    assert not _card_payment(b, 150).row()["credit.minimum_payment_only"]
    b2 = builder().card(3000, 10000).liability("cc", minimum_payment_amount=60.0)
    assert not _card_payment(_card_payment(b2, 60, -40), 150, -10).row("180d")["credit.minimum_payment_only"]


def test_minimum_payment_only_needs_a_balance_above_the_minimum(builder):
    b = builder().card(50, 10000).liability("cc", minimum_payment_amount=60.0)
    assert not _card_payment(b, 60).row()["credit.minimum_payment_only"]


def test_minimum_payment_only_from_liabilities_when_no_payment_transactions(builder):
    b = (
        builder()
        .card(3000, 10000)
        .liability(
            "cc", minimum_payment_amount=60.0, last_payment_amount=60.0, last_payment_date=builder.day(-12)
        )
    )
    assert b.row()["credit.minimum_payment_only"]
    old = (
        builder()
        .card(3000, 10000)
        .liability(
            "cc", minimum_payment_amount=60.0, last_payment_amount=60.0, last_payment_date=builder.day(-45)
        )
    )
    assert not old.row("30d")["credit.minimum_payment_only"]
    assert old.row("180d")["credit.minimum_payment_only"]


def test_overdue_card(builder):
    row = builder().card(100, 5000).liability("cc", is_overdue=True).row()
    assert row["credit.overdue"]
    assert row["credit.cards"][0]["overdue"]
    assert not builder().card(100, 5000).liability("cc", is_overdue=None).row()["credit.overdue"]


# --------------------------------------------------------------------------------------------------
# Cash flow


def _everyday(b):
    b.checking(1000).card(0, 5000)
    b.payroll([-20], 3000)
    b.tx("cc", -3, 120.0, "WHOLE FOODS", "FOOD_AND_DRINK", "FOOD_AND_DRINK_GROCERIES")
    b.tx("chk", -2, 1500.0, "RENT", "RENT_AND_UTILITIES", "RENT_AND_UTILITIES_RENT")
    b.tx("chk", -1, 35.0, "OVERDRAFT FEE", "BANK_FEES", "BANK_FEES_OVERDRAFT_FEES")
    # not spending: transfers between own accounts, card and loan payments
    b.tx("chk", -4, 500.0, "TRANSFER TO SAVINGS", "TRANSFER_OUT", "TRANSFER_OUT_SAVINGS")
    b.tx("chk", -5, 300.0, "PAYMENT TO CARD", "LOAN_PAYMENTS", "LOAN_PAYMENTS_CREDIT_CARD_PAYMENT")
    b.tx("cc", -5, -300.0, "PAYMENT THANK YOU", "LOAN_PAYMENTS", "LOAN_PAYMENTS_CREDIT_CARD_PAYMENT")
    b.tx("chk", -6, 250.0, "AUTO LOAN", "LOAN_PAYMENTS", "LOAN_PAYMENTS_CAR_PAYMENT")
    b.tx("chk", -6, -200.0, "FROM SAVINGS", "TRANSFER_IN", "TRANSFER_IN_ACCOUNT_TRANSFER")
    # a refund on the card is neither income nor negative spending
    b.tx("cc", -7, -40.0, "TARGET REFUND", "GENERAL_MERCHANDISE", "GENERAL_MERCHANDISE_SUPERSTORES")
    return b


def test_spending_income_and_fees(builder):
    row = _everyday(builder()).row()
    assert row["cash_flow.spending"] == pytest.approx(120 + 1500 + 35)
    assert row["cash_flow.income"] == pytest.approx(3000)
    assert row["cash_flow.net"] == pytest.approx(3000 - 1655)
    assert row["cash_flow.monthly_spending"] == pytest.approx(round(1655 / (30 / DAYS_PER_MONTH), 2))
    assert row["cash_flow.overdraft_fee_count"] == 1
    assert row["cash_flow.top_categories"] == [
        {"category": "RENT_AND_UTILITIES", "amount": 1500.0},
        {"category": "FOOD_AND_DRINK", "amount": 120.0},
        {"category": "BANK_FEES", "amount": 35.0},
    ]


def test_overdraft_and_nsf_fees_counted_per_window(builder):
    b = builder().checking()
    b.tx("chk", -3, 35.0, "OVERDRAFT", "BANK_FEES", "BANK_FEES_OVERDRAFT_FEES")
    b.tx("chk", -100, 34.0, "NSF FEE", "BANK_FEES", "BANK_FEES_INSUFFICIENT_FUNDS")
    b.tx("chk", -50, -35.0, "FEE REVERSAL", "BANK_FEES", "BANK_FEES_OVERDRAFT_FEES")  # a refund, not a fee
    signals = b.signals()
    assert builder.row_of(signals, "30d")["cash_flow.overdraft_fee_count"] == 1
    assert builder.row_of(signals, "180d")["cash_flow.overdraft_fee_count"] == 2


def test_amount_sign_trap(builder):
    """Plaid sign: purchases are positive. A dataset with the opposite convention gives other signals."""
    b = _everyday(builder())
    plain = b.row()
    assert plain["cash_flow.spending"] > 0
    for tx in b.transactions:
        tx["amount"] = -tx["amount"]
    flipped = b.row()
    assert flipped["cash_flow.spending"] != plain["cash_flow.spending"]
    assert flipped["cash_flow.income"] == 0  # the "payroll" is now money out, under INCOME: neither
    assert flipped["cash_flow.spending"] == pytest.approx(40.0)  # only the flipped refund is an outflow


# --------------------------------------------------------------------------------------------------
# Windows, exclusions, shape


def _history(b):
    b.checking(800).account("sav", subtype="savings", balance=2000).card(600, 2000)
    b.payroll(range(-168, 1, 14), 1500)
    b.series("cc", range(-150, 1, 30), 15.49, name="NETFLIX.COM", primary="ENTERTAINMENT")
    b.series(
        "cc",
        range(-175, 1, 7),
        [40 + (i * 37) % 50 for i in range(26)],
        name="SAFEWAY #12",
        primary="FOOD_AND_DRINK",
    )
    b.tx("sav", -20, -100, "TRANSFER IN", "TRANSFER_IN", "TRANSFER_IN_ACCOUNT_TRANSFER")
    return b


def _scalars(frame: pd.DataFrame) -> pd.DataFrame:
    return frame[["user_id", "window", *SIGNAL_SCHEMA]].reset_index(drop=True)


def test_as_of_defaults_to_the_latest_posted_transaction(builder):
    b = _history(builder())
    b.tx("chk", 5, 999.0, pending=True)  # later but pending: does not move the as-of date
    signals = b.signals(as_of=None)
    assert set(signals["as_of"]) == {builder.ANCHOR}
    assert builder.row_of(signals, "30d")["window_start"] == builder.day(-29)
    pd.testing.assert_frame_equal(_scalars(signals), _scalars(b.signals(as_of=builder.ANCHOR)))


def test_windows_anchor_on_the_data_not_today(builder):
    b = _history(builder())
    original = b.signals(as_of=None)
    shift = timedelta(days=3 * 365 + 1)
    for tx in b.transactions:
        tx["date"] = tx["date"] - shift
    shifted = b.signals(as_of=None)
    assert set(shifted["as_of"]) == {builder.ANCHOR - shift}
    pd.testing.assert_frame_equal(_scalars(original), _scalars(shifted))
    streams = [len(s) for s in shifted["subscriptions.streams"]]
    assert streams == [len(s) for s in original["subscriptions.streams"]]
    assert max(streams) > 0


def test_pending_transactions_are_ignored(builder):
    b = _history(builder())
    before = _scalars(b.signals())
    b.tx("cc", -1, 5000.0, "BIG TV", pending=True)
    b.tx("chk", -1, -9000.0, "ACME PAYROLL", "INCOME", "INCOME_WAGES", pending=True)
    pd.testing.assert_frame_equal(before, _scalars(b.signals()))


def test_business_accounts_are_excluded(builder):
    b = _history(builder())
    before = b.signals()
    b.account("biz", balance=50000, holder="business")
    b.account("bizcard", "credit", "credit card", balance=9900, limit=10000, holder="business")
    b.tx("biz", -1, 7000.0, "SUPPLIER")
    b.tx("biz", -2, -20000.0, "CLIENT PAYROLL", "INCOME", "INCOME_WAGES")
    b.tx("bizcard", -3, 900.0, "OFFICE DEPOT")
    after = b.signals()
    pd.testing.assert_frame_equal(_scalars(before), _scalars(after))
    assert [c["account_id"] for c in builder.row_of(after)["credit.cards"]] == ["cc"]


def test_transactions_on_unknown_accounts_are_ignored(builder):
    b = _history(builder())
    before = _scalars(b.signals())
    b.tx("nope", -1, 100.0)
    pd.testing.assert_frame_equal(before, _scalars(b.signals()))


def test_as_of_can_be_pinned_per_user(builder):
    b = _history(builder())
    other = _history(builder("u2"))
    data = Dataset.concat([b.dataset(), other.dataset()])
    pinned = builder.day(-60)
    signals = compute_signals(data, as_of={"u1": pinned, "ghost": date(2020, 1, 1)})
    assert builder.row_of(signals, "30d", "u1")["as_of"] == pinned
    assert builder.row_of(signals, "30d", "u2")["as_of"] == builder.ANCHOR
    # everything after the pinned date is outside the window
    assert builder.row_of(signals, "30d", "u1")["cash_flow.income"] == pytest.approx(3000)


def test_batch_equals_one_user_at_a_time(builder):
    parts = [
        _history(builder("u1")),
        _everyday(builder("u2")),
        builder("u3").card(2500, 5000).checking(10),
    ]
    batch = compute_signals(Dataset.concat(p.dataset() for p in parts))
    single = pd.concat([compute_signals(p.dataset()) for p in parts], ignore_index=True)
    pd.testing.assert_frame_equal(_scalars(batch), _scalars(single))
    for column in ("credit.cards", "subscriptions.streams", "subscriptions.recurring_merchants"):
        assert batch[column].tolist() == single[column].tolist()


def test_output_columns_and_schema(builder):
    signals = _history(builder()).signals()
    assert list(signals.columns) == list(COLUMNS)
    assert list(signals["window"]) == ["30d", "180d"]
    row = builder.row_of(signals)
    for key, kind in SIGNAL_SCHEMA.items():
        value = row[key]
        if kind == "number":
            assert isinstance(value, int | float | np.number), key
            assert not isinstance(value, bool), key
        elif kind == "bool":
            assert isinstance(value, bool | np.bool_), key
        else:
            assert isinstance(value, str), key


def test_empty_dataset():
    signals = compute_signals(Dataset())
    assert signals.empty
    assert list(signals.columns) == list(COLUMNS)


def test_user_without_transactions_still_gets_balance_signals(builder):
    signals = builder().card(800, 1000).signals(as_of=None)
    row = builder.row_of(signals)
    assert row["as_of"] is None
    assert row["credit.max_utilization"] == 0.8
    assert row["cash_flow.spending"] == 0
    assert row["income.pay_frequency"] == "none"


# --------------------------------------------------------------------------------------------------
# Dataset


def test_dataset_from_arrow_and_concat(builder):
    b = _history(builder())
    frames = b.dataset()
    tables = {
        "accounts": pa.Table.from_pandas(frames.accounts, schema=TABLES["accounts"], preserve_index=False),
        "transactions": pa.Table.from_pandas(
            frames.transactions, schema=TABLES["transactions"], preserve_index=False
        ),
    }
    loaded = Dataset.from_arrow(tables)
    assert loaded.credit_liabilities.empty
    assert list(loaded.credit_liabilities.columns) == TABLES["credit_liabilities"].names
    pd.testing.assert_frame_equal(_scalars(compute_signals(loaded)), _scalars(compute_signals(frames)))
    both = Dataset.concat([loaded, builder("u2").card(1, 2).dataset()])
    assert both.user_ids() == ["u1", "u2"]
    assert both.for_users(["u2"]).transactions.empty
    with pytest.raises(ValueError, match="unknown dataset tables"):
        Dataset.from_arrow({"txns": tables["transactions"]})


def test_dataset_fills_missing_columns():
    data = Dataset(transactions=pd.DataFrame({"user_id": ["u"], "date": ["2024-01-02"], "amount": ["12.5"]}))
    assert list(data.transactions.columns) == TABLES["transactions"].names
    assert data.transactions["amount"].dtype == np.float64
    assert data.transactions["pending"].tolist() == [False]
    assert pd.api.types.is_datetime64_any_dtype(data.transactions["date"])


def test_dictionary_encoded_columns_give_the_same_signals(builder):
    """Categoricals (what a dictionary-encoded Parquet read gives) are used by their codes."""
    parts = [_history(builder("u1")), _everyday(builder("u2"))]
    plain = Dataset.concat(p.dataset() for p in parts)
    text = ["user_id", "account_id", "name", "merchant_name", "category_primary", "category_detailed"]
    encoded = Dataset(
        accounts=plain.accounts.astype(
            {"user_id": "category", "type": "category", "holder_category": "category"}
        ),
        transactions=plain.transactions.astype(dict.fromkeys(text, "category")),
        credit_liabilities=plain.credit_liabilities,
    )
    expected, got = compute_signals(plain), compute_signals(encoded)
    pd.testing.assert_frame_equal(_scalars(got), _scalars(expected))
    assert got["subscriptions.streams"].tolist() == expected["subscriptions.streams"].tolist()
