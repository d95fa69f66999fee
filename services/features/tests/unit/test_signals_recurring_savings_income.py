"""Subscription, savings and income signals on hand-built datasets with known answers."""

from __future__ import annotations

from datetime import date

import pandas as pd
import pytest

from spendsense_features.domain.signals import DAYS_PER_MONTH

MONTHLY = range(-150, 1, 30)  # six charges, 30 days apart, the last on the as-of date


def _sub(b, days, amount, name, account="cc", **kw):
    return b.series(account, days, amount, name=name, primary="ENTERTAINMENT", **kw)


# --------------------------------------------------------------------------------------------------
# Subscriptions


def test_monthly_subscription_with_name_variants_is_one_merchant(builder):
    b = builder().card(0, 5000)
    names = ["NETFLIX.COM 1234", "Netflix", "NETFLIX.COM 5678", "netflix.com", "NETFLIX.COM 1234", "Netflix"]
    for when, name in zip(MONTHLY, names, strict=True):
        b.tx("cc", when, 15.49, name, "ENTERTAINMENT", "ENTERTAINMENT_TV_AND_MOVIES")
    signals = b.signals()
    long, short = builder.row_of(signals, "180d"), builder.row_of(signals, "30d")
    assert long["subscriptions.recurring_merchant_count"] == 1
    [merchant] = long["subscriptions.recurring_merchants"]
    assert merchant["cadence"] == "monthly"
    assert merchant["count"] == 6
    assert merchant["typical_amount"] == 15.49
    assert merchant["monthly_amount"] == 15.49
    assert long["subscriptions.monthly_recurring_spend"] == 15.49
    # the 30-day window looks back 90 days: the charges at -60, -30 and 0
    assert short["subscriptions.recurring_merchant_count"] == 1
    [stream] = short["subscriptions.streams"]
    assert stream["count"] == 3
    assert stream["transaction_ids"] == ["t4", "t5", "t6"]
    assert stream["first_date"] == builder.day(-60).isoformat()
    assert stream["last_date"] == builder.ANCHOR.isoformat()
    assert stream["predicted_next_date"] == builder.day(30).isoformat()
    assert stream["frequency"] == "MONTHLY"
    assert stream["status"] == "MATURE"
    assert stream["is_active"]
    assert stream["direction"] == "outflow"
    assert stream["price_change"] is None
    assert stream["evidence"] == {
        "gap_median": 30.0,
        "gap_max_deviation": 0.0,
        "amount_cv": 0.0,
        "price_change": False,
    }
    assert stream["stream_id"] == long["subscriptions.streams"][0]["stream_id"]  # stable across windows


def test_subscription_share_of_spending(builder):
    b = _sub(builder().card(0, 5000), MONTHLY, 20.0, "SPOTIFY")
    b.tx("cc", -3, 180.0, "WHOLE FOODS", "FOOD_AND_DRINK")
    row = b.row("30d")
    assert row["cash_flow.spending"] == 200
    assert row["subscriptions.subscription_share"] == pytest.approx(0.1)


def test_merchant_entity_id_groups_different_descriptions(builder):
    b = builder().card(0, 5000)
    for i, when in enumerate(MONTHLY):
        b.tx("cc", when, 9.99, f"APL*ITUNES {i}XYZ", "ENTERTAINMENT", entity="apple-ent")
    assert b.row("180d")["subscriptions.recurring_merchant_count"] == 1


def test_weekly_grocery_with_varying_amounts_is_not_recurring(builder):
    b = builder().card(0, 5000)
    b.series(
        "cc",
        range(-175, 1, 7),
        [45, 82, 61, 120, 38, 95] * 4 + [55, 70],
        name="WHOLE FOODS #123",
        primary="FOOD_AND_DRINK",
        detailed="FOOD_AND_DRINK_GROCERIES",
    )
    signals = b.signals()
    for window in ("30d", "180d"):
        row = builder.row_of(signals, window)
        assert row["subscriptions.recurring_merchant_count"] == 0
        assert row["subscriptions.streams"] == []


@pytest.mark.parametrize(
    ("primary", "detailed"),
    [
        ("RENT_AND_UTILITIES", "RENT_AND_UTILITIES_RENT"),
        ("LOAN_PAYMENTS", "LOAN_PAYMENTS_MORTGAGE_PAYMENT"),
        ("LOAN_PAYMENTS", "LOAN_PAYMENTS_CAR_PAYMENT"),
        ("LOAN_PAYMENTS", "LOAN_PAYMENTS_CREDIT_CARD_PAYMENT"),
        ("TRANSFER_OUT", "TRANSFER_OUT_SAVINGS"),
        ("BANK_FEES", "BANK_FEES_OTHER_BANK_FEES"),
    ],
)
def test_housing_loans_transfers_and_fees_are_never_subscriptions(builder, primary, detailed):
    b = (
        builder()
        .checking(5000)
        .series("chk", MONTHLY, 1500.0, name="MONTHLY THING", primary=primary, detailed=detailed)
    )
    row = b.row("180d")
    assert row["subscriptions.recurring_merchant_count"] == 0
    assert row["subscriptions.streams"] == []


def test_a_price_change_keeps_one_stream(builder):
    b = _sub(builder().card(0, 5000), MONTHLY, [9.99, 9.99, 9.99, 14.99, 14.99, 14.99], "HULU")
    row = b.row("180d")
    [merchant] = row["subscriptions.recurring_merchants"]
    assert merchant["count"] == 6
    assert merchant["typical_amount"] == 14.99
    assert merchant["price_change"] == {"from": 9.99, "to": 14.99, "date": builder.day(-60).isoformat()}
    [stream] = row["subscriptions.streams"]
    assert stream["evidence"]["price_change"]
    assert len(stream["transaction_ids"]) == 6
    assert stream["last_amount"] == 14.99
    assert stream["average_amount"] == pytest.approx(12.49)


def test_a_small_clean_price_step_is_reported_too(builder):
    b = _sub(builder().card(0, 5000), MONTHLY, [15.49] * 3 + [17.99] * 3, "NETFLIX")
    [merchant] = b.row("180d")["subscriptions.recurring_merchants"]
    assert merchant["price_change"]["from"] == 15.49
    assert merchant["price_change"]["to"] == 17.99


def test_two_price_changes_is_not_stable(builder):
    b = _sub(builder().card(0, 5000), MONTHLY, [5.0, 5.0, 10.0, 10.0, 20.0, 20.0], "WEIRD")
    assert b.row("180d")["subscriptions.recurring_merchant_count"] == 0


def test_weekly_and_biweekly_cadences_normalize_to_a_month(builder):
    b = builder().card(0, 5000)
    _sub(b, range(-28, 1, 7), 4.99, "DAILY NEWS")
    _sub(b, range(-56, 1, 14), 10.0, "MEAL KIT")
    row = b.row("30d")
    cadence = {
        m["merchant"]: (m["cadence"], m["monthly_amount"]) for m in row["subscriptions.recurring_merchants"]
    }
    assert cadence == {
        "DAILY NEWS": ("weekly", round(4.99 * DAYS_PER_MONTH / 7, 2)),
        "MEAL KIT": ("biweekly", round(10 * DAYS_PER_MONTH / 14, 2)),
    }
    assert row["subscriptions.monthly_recurring_spend"] == pytest.approx(
        round(4.99 * DAYS_PER_MONTH / 7 + 10 * DAYS_PER_MONTH / 14, 2)
    )


def test_two_charges_are_early_detection_only(builder):
    row = _sub(builder().card(0, 5000), [-30, 0], 7.0, "NEWAPP").row("30d")
    assert row["subscriptions.recurring_merchant_count"] == 0
    [stream] = row["subscriptions.streams"]
    assert stream["status"] == "EARLY_DETECTION"
    assert stream["count"] == 2


def test_an_irregular_gap_breaks_the_cadence(builder):
    row = _sub(builder().card(0, 5000), [-150, -120, -60, -30, 0], 7.0, "GAPPY").row("180d")
    assert row["subscriptions.recurring_merchant_count"] == 0


def test_stopped_subscription_is_tombstoned(builder):
    b = _sub(builder().card(0, 5000), [-170, -140, -110], 12.0, "OLD GYM")
    b.tx("cc", 0, 5.0, "COFFEE")
    signals = b.signals()
    [stream] = builder.row_of(signals, "180d")["subscriptions.streams"]
    assert stream["status"] == "TOMBSTONED"
    assert not stream["is_active"]
    assert (
        builder.row_of(signals, "180d")["subscriptions.recurring_merchant_count"] == 1
    )  # ≥ 3 in the lookback
    assert builder.row_of(signals, "30d")["subscriptions.streams"] == []  # outside the 90-day lookback


def test_income_streams_are_reported_but_are_not_subscriptions(builder):
    row = builder().checking(100).payroll(range(-168, 1, 14), 2100).row("180d")
    assert row["subscriptions.recurring_merchant_count"] == 0
    [stream] = row["subscriptions.streams"]
    assert stream["direction"] == "inflow"
    assert stream["frequency"] == "BIWEEKLY"
    assert stream["average_amount"] == 2100
    assert stream["count"] == 13


# --------------------------------------------------------------------------------------------------
# Savings


def _saver(builder, savings_balance=5100.0, inflow=100.0, subtype="savings"):
    b = builder().checking(1000).account("sav", subtype=subtype, balance=savings_balance)
    b.tx("sav", -10, -inflow, "TRANSFER FROM CHECKING", "TRANSFER_IN", "TRANSFER_IN_ACCOUNT_TRANSFER")
    b.tx("chk", -10, inflow, "TRANSFER TO SAVINGS", "TRANSFER_OUT", "TRANSFER_OUT_SAVINGS")
    b.tx("chk", -5, 3043.75, "RENT", "RENT_AND_UTILITIES", "RENT_AND_UTILITIES_RENT")
    return b


def test_savings_growth_exactly_two_percent(builder):
    row = _saver(builder).row()
    assert row["savings.net_inflow"] == 100
    assert row["savings.net_inflow_monthly"] == pytest.approx(round(100 * DAYS_PER_MONTH / 30, 2))
    assert row["savings.growth_rate"] == 0.02  # 100 / (5100 - 100)
    assert row["savings.balance"] == 5100
    monthly_spending = 3043.75 * DAYS_PER_MONTH / 30
    assert row["savings.emergency_fund_months"] == pytest.approx(5100 / monthly_spending)


@pytest.mark.parametrize("subtype", ["savings", "money market", "hsa", "cd", "cash management"])
def test_savings_like_subtypes(builder, subtype):
    assert _saver(builder, subtype=subtype).row()["savings.net_inflow"] == 100


def test_no_growth_rate_without_a_positive_starting_balance(builder):
    assert pd.isna(_saver(builder, savings_balance=100.0, inflow=100.0).row()["savings.growth_rate"])


def test_withdrawals_make_net_inflow_negative_and_later_activity_moves_the_start(builder):
    b = _saver(builder)
    b.tx("sav", -2, 300.0, "WITHDRAWAL", "TRANSFER_OUT", "TRANSFER_OUT_ACCOUNT_TRANSFER")
    row = b.row()
    assert row["savings.net_inflow"] == -200
    assert row["savings.growth_rate"] == pytest.approx(-200 / 5300)
    pinned = b.row(as_of=builder.day(-3))  # the withdrawal happened after the as-of date
    assert pinned["savings.net_inflow"] == 100
    assert pinned["savings.growth_rate"] == pytest.approx(100 / 5300)


def test_no_savings_account(builder):
    row = builder().checking(100).tx("chk", -1, 50.0).row()
    assert row["savings.net_inflow"] == 0
    assert pd.isna(row["savings.growth_rate"])
    assert row["savings.emergency_fund_months"] == 0


# --------------------------------------------------------------------------------------------------
# Income


def _frequency(builder, days, window="180d", **kw):
    row = builder().checking(100).payroll(days, **kw).row(window)
    return row["income.pay_frequency"], row["income.median_pay_gap_days"]


def test_pay_frequencies(builder):
    assert _frequency(builder, range(-175, 1, 7)) == ("weekly", 7)
    assert _frequency(builder, range(-168, 1, 14)) == ("biweekly", 14)
    assert _frequency(builder, range(-150, 1, 30)) == ("monthly", 30)
    semi = [date(2024, m, d) for m in range(1, 7) for d in (1, 15)]
    frequency, gap = _frequency(builder, semi)
    assert frequency == "semi_monthly"
    assert gap in (14, 14.5, 15)
    assert _frequency(builder, [-130, -120, -80, -60, 0])[0] == "irregular"
    assert _frequency(builder, [-3])[0] == "irregular"


def test_no_income(builder):
    row = builder().checking(100).tx("chk", -1, 20.0).row()
    assert row["income.pay_frequency"] == "none"
    assert pd.isna(row["income.median_pay_gap_days"])
    assert pd.isna(row["income.variability"])
    assert row["income.income_total"] == 0
    assert row["cash_flow.income"] == 0


def test_thirty_day_window_uses_ninety_days_of_pay_history(builder):
    row = builder().checking(100).payroll([-60, -30, 0], 2000).row("30d")
    assert row["income.pay_frequency"] == "monthly"
    assert row["income.median_pay_gap_days"] == 30
    assert row["income.income_total"] == 2000  # the total is the window's only
    assert row["income.pay_count"] == 3


def test_pay_variability(builder):
    row = builder().checking(100).payroll([-28, -14, 0], [1000, 3000, 2000]).row()
    assert row["income.variability"] == pytest.approx((2 / 3) ** 0.5 * 1000 / 2000)


def test_v2_income_names_and_payroll_descriptions(builder):
    b = builder().checking(100)
    b.tx("chk", -28, -1000, "UBER DRIVER", "INCOME", "INCOME_OTHER_INCOME", raw="INCOME_GIG_ECONOMY")
    b.tx("chk", -14, -1000, "ACME", "INCOME", "INCOME_WAGES", raw="INCOME_SALARY")
    b.tx("chk", 0, -1000, "ACME DIRECT DEP", "TRANSFER_IN", "TRANSFER_IN_DEPOSIT")  # payroll by description
    row = b.row()
    assert row["income.pay_count"] == 3
    assert row["income.pay_frequency"] == "biweekly"
    assert row["income.income_total"] == 3000
    assert row["cash_flow.income"] == 3000


@pytest.mark.parametrize("detailed", ["INCOME_INTEREST_EARNED", "INCOME_DIVIDENDS", "INCOME_TAX_REFUND"])
def test_interest_dividends_and_refunds_are_income_but_not_pay(builder, detailed):
    row = builder().checking(100).tx("chk", -1, -50.0, "BANK", "INCOME", detailed).row()
    assert row["income.pay_count"] == 0
    assert row["income.pay_frequency"] == "none"
    assert row["cash_flow.income"] == 50


def test_money_into_a_card_is_not_income(builder):
    row = builder().card(0, 1000).tx("cc", -1, -500.0, "ACME PAYROLL", "INCOME", "INCOME_WAGES").row()
    assert row["income.pay_count"] == 0
    assert row["cash_flow.income"] == 0


def test_cash_flow_buffer(builder):
    b = builder().checking(1500).account("sav", subtype="savings", balance=9999)
    b.tx("chk", -1, 3043.75, "RENT", "RENT_AND_UTILITIES", "RENT_AND_UTILITIES_RENT")
    row = b.row()
    assert row["income.checking_balance"] == 1500
    assert row["income.cash_flow_buffer_months"] == pytest.approx(1500 / (3043.75 * DAYS_PER_MONTH / 30))
    assert pd.isna(builder().checking(100).row()["income.cash_flow_buffer_months"])  # no spending
