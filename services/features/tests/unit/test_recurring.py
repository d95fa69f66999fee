"""The vectorized recurring-stream detector, directly and with Hypothesis properties."""

from __future__ import annotations

import numpy as np
import pandas as pd
from hypothesis import given, settings
from hypothesis import strategies as st

from spendsense_features.domain import classify
from spendsense_features.domain.classify import merchant_keys, normalize_merchant
from spendsense_features.domain.recurring import (
    MONTHLY,
    WEEKLY,
    StreamCandidates,
    Streams,
    build_events,
    detect_streams,
    group_median,
)

FAST = settings(max_examples=60, deadline=None)


def _candidates(series: list[tuple[int, int, bool, list[int], list[float]]]) -> StreamCandidates:
    """(user, key, inflow, days, amounts) per series → flat candidate arrays."""
    user, key, inflow, day, amount = [], [], [], [], []
    for u, k, into, days, amounts in series:
        user += [u] * len(days)
        key += [k] * len(days)
        inflow += [into] * len(days)
        day += days
        amount += amounts
    n = len(day)
    return StreamCandidates(
        user=np.array(user, dtype=np.int64),
        key=np.array(key, dtype=np.int64),
        inflow=np.array(inflow, dtype=bool),
        day=np.array(day, dtype=np.int64),
        amount=np.array(amount, dtype=float),
        row=np.arange(n, dtype=np.int64),
    )


def _detect(days: list[int], amounts: list[float], inflow: bool = False) -> Streams:
    as_of = np.array([max(days)], dtype=np.int64)
    return detect_streams(_candidates([(0, 0, inflow, days, amounts)]), as_of, lookback=100_000)


def _days(gaps: list[int], start: int = 1000) -> list[int]:
    return list(np.cumsum([start, *gaps]).tolist())


def test_monthly_stream_fields():
    streams = _detect(_days([30, 31, 29]), [10.0, 10.0, 11.0, 10.5])
    [row] = streams.table.to_dict(orient="records")
    assert row["cadence"] == MONTHLY
    assert row["count"] == 4
    assert row["recurring"]
    assert row["median_gap"] == 30
    assert row["gap_max_deviation"] == 1
    assert row["typical_amount"] == 10.25
    assert row["last_amount"] == 10.5
    assert streams.members()[0].tolist() == [0, 1, 2, 3]


def test_same_day_charges_are_one_event():
    days = _days([7, 7, 7])
    streams = _detect([*days, days[-1]], [3.0, 3.0, 3.0, 1.5, 1.5])
    [row] = streams.table.to_dict(orient="records")
    assert row["cadence"] == WEEKLY
    assert row["count"] == 4
    assert row["tx_count"] == 5
    assert row["last_amount"] == 3.0


def test_lookback_limits_the_history():
    days = _days([30] * 5)
    streams = detect_streams(_candidates([(0, 0, False, days, [5.0] * 6)]), np.array([days[-1]]), lookback=61)
    assert streams.table["count"].tolist() == [3]


def test_empty_input():
    streams = _detect([5], [1.0])
    assert streams.table.empty
    assert streams.members() == []


@FAST
@given(
    gaps=st.lists(st.integers(28, 31), min_size=2, max_size=11),
    base=st.floats(1.0, 500.0),
    factors=st.lists(st.floats(0.9, 1.1), min_size=12, max_size=12),
)
def test_monthly_series_with_stable_amounts_is_recurring(gaps, base, factors):
    days = _days(gaps)
    amounts = [round(base * f, 2) for f in factors[: len(days)]]
    streams = _detect(days, amounts)
    assert len(streams.table) == 1
    row = streams.table.iloc[0]
    assert row["recurring"]
    assert row["cadence"] == MONTHLY
    assert row["tx_count"] == len(days)
    assert 0.9 * base - 0.01 <= row["typical_amount"] <= 1.1 * base + 0.01


_OFF_BAND = [1, 2, 3, 4, 10, 11, *range(20, 26), *range(36, 61)]


@FAST
@given(
    gaps=st.lists(st.integers(28, 31), min_size=2, max_size=9),
    bad_gap=st.sampled_from(_OFF_BAND),
    where=st.integers(0, 9),
    amount=st.floats(1.0, 100.0),
)
def test_a_gap_off_every_cadence_is_not_recurring(gaps, bad_gap, where, amount):
    gaps = list(gaps)
    gaps[where % len(gaps)] = bad_gap
    assert _detect(_days(gaps), [amount] * (len(gaps) + 1)).table.empty


@FAST
@given(
    gaps=st.lists(st.one_of(st.integers(1, 60), st.integers(28, 31)), min_size=2, max_size=12),
    lows=st.lists(st.floats(10.0, 20.0), min_size=13, max_size=13),
    highs=st.lists(st.floats(60.0, 120.0), min_size=13, max_size=13),
)
def test_widely_varying_amounts_are_not_recurring(gaps, lows, highs):
    days = _days(gaps)
    amounts = [lows[i] if i % 2 == 0 else highs[i] for i in range(len(days))]
    assert _detect(days, amounts).table.empty


@FAST
@given(
    before=st.integers(2, 5),
    after=st.integers(2, 5),
    price=st.floats(2.0, 100.0),
    ratio=st.sampled_from([0.5, 0.6, 1.3, 1.5, 2.0]),
    noise=st.lists(st.one_of(st.floats(-0.02, 0.02), st.floats(-0.005, 0.005)), min_size=10, max_size=10),
)
def test_one_price_change_keeps_one_stream(before, after, price, ratio, noise):
    n = before + after
    amounts = [price * (1 if i < before else ratio) * (1 + noise[i]) for i in range(n)]
    days = _days([30] * (n - 1))
    streams = _detect(days, amounts)
    assert len(streams.table) == 1
    assert streams.table["tx_count"].iloc[0] == n
    if max(abs(x) for x in noise[:n]) <= 0.005:  # clean price levels: the change is reported
        row = streams.table.iloc[0]
        assert row["change_day"] == days[before]
        assert abs(row["change_to"] / row["change_from"] - ratio) < 0.02 * ratio


@FAST
@given(
    data=st.lists(
        st.tuples(
            st.integers(0, 3),  # user
            st.integers(0, 4),  # merchant
            st.booleans(),  # inflow
            st.sampled_from([7, 14, 30]),
            st.integers(2, 8),  # events
            st.floats(1.0, 50.0),
            st.integers(0, 60),  # start offset
        ),
        min_size=1,
        max_size=8,
        unique_by=lambda t: (t[0], t[1], t[2]),
    )
)
def test_batch_detection_equals_one_user_at_a_time(data):
    series = [
        (u, k, into, _days([step] * (n - 1), 1000 + off), [amt] * n) for u, k, into, step, n, amt, off in data
    ]
    as_of = np.full(4, 1400, dtype=np.int64)
    batch = detect_streams(_candidates(series), as_of, lookback=180).table
    singles = [
        detect_streams(_candidates([s for s in series if s[0] == u]), as_of, lookback=180).table
        for u in range(4)
    ]
    columns = [
        "user",
        "key",
        "inflow",
        "count",
        "first_day",
        "last_day",
        "cadence",
        "typical_amount",
        "is_active",
    ]
    key = ["user", "inflow", "key"]
    expected = pd.concat(singles, ignore_index=True)[columns].sort_values(key).reset_index(drop=True)
    got = batch[columns].sort_values(key).reset_index(drop=True)
    pd.testing.assert_frame_equal(got, expected, check_dtype=False)


def test_events_are_built_once_for_several_lookbacks():
    days = _days([30] * 5)
    table = build_events(_candidates([(0, 0, False, days, [5.0] * 6)]))
    as_of = np.array([days[-1]])
    assert detect_streams(table, as_of, 90).table["count"].tolist() == [3]
    assert detect_streams(table, as_of, 180).table["count"].tolist() == [6]


@FAST
@given(st.lists(st.tuples(st.integers(0, 5), st.floats(-1e6, 1e6)), min_size=1, max_size=50))
def test_group_median_matches_numpy(pairs):
    group = np.array([g for g, _ in pairs])
    values = np.array([v for _, v in pairs])
    got = group_median(group, values, 6)
    for g in range(6):
        members = values[group == g]
        if members.size:
            assert np.isclose(got[g], np.median(members))
        else:
            assert np.isnan(got[g])


def test_merchant_normalization():
    names = np.array(
        [
            "NETFLIX.COM 1234",
            "Netflix",
            "netflix.com",
            "SQ *BLUE BOTTLE #12",
            "Blue Bottle",
            "STARBUCKS STORE 00123",
        ],
        dtype=object,
    )
    assert normalize_merchant(names).tolist() == [
        "netflix",
        "netflix",
        "netflix",
        "blue bottle",
        "blue bottle",
        "starbucks",
    ]


def test_merchant_keys_prefer_entity_then_merchant_name_then_description():
    entity = pd.Series(["e1", None, None, None], dtype=object)
    merchant = pd.Series([None, "Netflix", None, None], dtype=object)
    name = pd.Series(["WHATEVER", "x", "NETFLIX.COM 99", "12 34"], dtype=object)
    keys, labels = merchant_keys(entity, merchant, name)
    assert keys[1] == keys[2]
    assert keys[0] != keys[1]
    assert keys[3] == -1
    assert labels[keys[0]] == "e:e1"
    assert labels[keys[1]] == "n:netflix"


@settings(max_examples=200, deadline=None)
@given(
    first=st.lists(st.text(max_size=20), max_size=12),
    second=st.lists(
        st.sampled_from(["NETFLIX.COM 1234", "SQ *Blue Bottle", "", "#123", "Ünïcode"]), max_size=6
    ),
)
def test_merchant_keys_kept_across_batches_are_those_computed_afresh(first, second):
    """The keys remembered from earlier batches (and a memory cleared when full) change no key."""
    for texts in (first, second, first + second, second):
        values = np.array(texts, dtype=object)
        assert normalize_merchant(values).tolist() == classify._normalized(values.astype(str).tolist())


def test_the_memory_of_merchant_keys_is_cleared_when_full(monkeypatch):
    monkeypatch.setattr(classify, "_NORMALIZED_MAX", 3)
    monkeypatch.setattr(classify, "_NORMALIZED", {})
    assert normalize_merchant(np.array(["A 1", "B 2"], dtype=object)).tolist() == ["a", "b"]
    assert normalize_merchant(np.array(["C.com", "D inc"], dtype=object)).tolist() == ["c", "d"]
    assert set(classify._NORMALIZED) == {"C.com", "D inc"}
