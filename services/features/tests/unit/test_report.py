"""The public per-user analysis document."""

from __future__ import annotations

import json
from datetime import date

import numpy as np
import pandas as pd
import pytest

from spendsense_features.domain.dataset import Dataset
from spendsense_features.domain.report import REQUIRED_SIGNALS, analysis_report, json_safe
from spendsense_features.domain.rules import assign_personas, load_rule_set
from spendsense_features.domain.signals import compute_signals


def _report(builder):
    b = builder().card(2500, 5000, name="Visa", mask="4523").checking(300)
    b.payroll(range(-168, 1, 14), 1800)
    b.series("cc", range(-150, 1, 30), 15.49, name="NETFLIX.COM", primary="ENTERTAINMENT")
    other = builder("u2").checking(10)  # no transactions: nulls everywhere
    signals = compute_signals(Dataset.concat([b.dataset(), other.dataset()]))
    return analysis_report(signals, assign_personas(signals, load_rule_set()))


def test_report_shape(builder):
    reports = _report(builder)
    assert [r["user_id"] for r in reports] == ["u1", "u2"]
    first = reports[0]
    assert set(first) == {"user_id", "as_of", "windows"}
    assert first["as_of"] == builder.ANCHOR.isoformat()
    assert set(first["windows"]) == {"30d", "180d"}
    for window in first["windows"].values():
        assert set(window) == {"persona", "signals"}
        assert set(window["persona"]) == {"primary", "matched"}
        for group, keys in REQUIRED_SIGNALS.items():
            assert set(keys) <= set(window["signals"][group]), group
    short = first["windows"]["30d"]
    assert short["persona"] == {
        "primary": "high_utilization",
        "matched": [{"id": "high_utilization", "criteria": ["card_utilization_at_least_50pct"]}],
    }
    credit = short["signals"]["credit"]
    assert credit["max_utilization"] == 0.5  # a fraction, not 50
    assert credit["cards"][0]["mask"] == "4523"
    subs = short["signals"]["subscriptions"]
    assert subs["recurring_merchant_count"] == 1
    assert isinstance(subs["recurring_merchant_count"], int)
    assert short["signals"]["income"]["pay_frequency"] == "biweekly"
    assert isinstance(short["signals"]["cash_flow"]["overdraft_fee_count"], int)


def test_report_is_strict_json(builder):
    reports = _report(builder)
    text = json.dumps(reports, allow_nan=False)  # no NaN, no numpy types, no dates
    assert json.loads(text) == reports
    empty = reports[1]
    assert empty["as_of"] is None
    assert empty["windows"]["30d"]["signals"]["credit"]["max_utilization"] is None
    assert empty["windows"]["30d"]["signals"]["income"]["median_pay_gap_days"] is None
    assert empty["windows"]["30d"]["persona"]["primary"] == "general_wellness"


def test_report_rejects_frames_that_are_not_signals():
    frame = pd.DataFrame({"user_id": ["u"], "window": ["30d"], "credit.max_utilization": [0.1]})
    personas = pd.DataFrame({"user_id": ["u"], "window": ["30d"], "primary": ["x"], "matched": [[]]})
    with pytest.raises(ValueError, match=r"signals lack credit\.cards"):
        analysis_report(frame, personas)


def test_json_safe():
    value = {
        "a": np.float64("nan"),
        "b": [np.int64(3), np.bool_(True), date(2024, 1, 2), pd.Timestamp("2024-01-03"), pd.NaT],
        "c": (np.inf, None, "x"),
    }
    assert json_safe(value) == {
        "a": None,
        "b": [3, True, "2024-01-02", "2024-01-03", None],
        "c": [None, None, "x"],
    }
