"""``analyze_json``'s report encoder writes exactly the bytes of ``orjson.dumps(analysis_report(...))``, and
a user's report is the same whoever else is analyzed with them (what analyzing an upload in pieces needs)."""

from __future__ import annotations

from datetime import date

import numpy as np
import orjson
import pandas as pd
import pyarrow as pa
import pytest

from spendsense_features.domain.analysis import analyze, joined_reports, report_items, reports_json
from spendsense_features.domain.dataset import Dataset
from spendsense_features.domain.report import analysis_report
from spendsense_features.domain.rules import assign_personas, load_rule_set
from spendsense_features.domain.signals import compute_signals
from spendsense_shared.dataset import TABLES


def _frames(builder) -> tuple[pd.DataFrame, pd.DataFrame]:
    b = builder().card(2500, 5000, name="Visa", mask="4523").checking(300)
    b.payroll(range(-168, 1, 14), 1800)
    b.series("cc", range(-150, 1, 30), 15.49, name="NETFLIX.COM", primary="ENTERTAINMENT")
    other = builder("u2").checking(10)  # no transactions: nulls and NaN everywhere
    signals = compute_signals(Dataset.concat([b.dataset(), other.dataset()]))
    return signals, assign_personas(signals, load_rule_set())


def test_the_same_bytes_as_the_report(builder):
    signals, personas = _frames(builder)
    expected = orjson.dumps(analysis_report(signals, personas))
    assert reports_json(signals, personas) == expected
    assert b"NaN" not in expected  # what makes the two agree on non-finite numbers: null in both


def test_values_that_need_json_safe(builder):
    """numpy scalars, dates, timestamps, NaT, infinities and tuples in nested values and top-level
    columns, and a count that is not finite: as ``json_safe`` writes them."""
    signals, personas = _frames(builder)
    signals = signals.copy()
    signals["credit.cards"] = [
        [{"limit": np.float64(5000), "due": pd.Timestamp("2024-01-03"), "n": np.int64(2), "ok": np.bool_(1)}],
        [{"seen": date(2024, 1, 2), "gone": pd.NaT, "far": (np.inf, -np.inf, None)}],
    ] * (len(signals) // 2)
    signals["subscriptions.recurring_merchant_count"] = [np.nan, 3.0] * (len(signals) // 2)
    signals["cash_flow.overdraft_fee_count"] = pd.Series(
        [np.float64(2.0), None] * (len(signals) // 2), dtype=object
    )
    signals["extra.when"] = [pd.Timestamp("2024-05-06 07:08:09")] * len(signals)
    expected = orjson.dumps(analysis_report(signals, personas))
    assert reports_json(signals, personas) == expected
    assert b'"due":"2024-01-03"' in expected
    assert b'"when":"2024-05-06"' in expected


def test_keys_that_are_not_strings_take_the_walk(builder):
    signals, personas = _frames(builder)
    signals = signals.copy()
    signals["credit.cards"] = [[{1: "one", (2, 3): "pair"}]] * len(signals)
    assert reports_json(signals, personas) == orjson.dumps(analysis_report(signals, personas))


def test_frames_that_are_not_signals_are_refused():
    frame = pd.DataFrame({"user_id": ["u"], "window": ["30d"], "credit.max_utilization": [0.1]})
    personas = pd.DataFrame({"user_id": ["u"], "window": ["30d"], "primary": ["x"], "matched": [[]]})
    with pytest.raises(ValueError, match=r"signals lack credit\.cards"):
        reports_json(frame, personas)


def _items(*builders) -> dict[str, bytes]:
    signals = compute_signals(Dataset.concat([b.dataset() for b in builders]))
    return dict(report_items(signals, assign_personas(signals, load_rule_set())))


def test_a_users_report_does_not_depend_on_who_else_is_analyzed(builder):
    """A figure none of the users analyzed together has (no recurring spend, no savings, no card) is still
    written as the others' are (0.0, not 0): the report of a user alone is the bytes of the same user's
    report beside others, so pieces of an upload analyzed apart merge into the report of the whole."""
    rich = builder().card(2500, 5000, name="Visa", mask="4523").checking(300)
    rich.account("sav", subtype="savings", balance=1200)
    rich.payroll(range(-168, 1, 14), 1800)
    rich.series("cc", range(-150, 1, 30), 15.49, name="NETFLIX.COM", primary="ENTERTAINMENT")
    quiet = builder("u2").checking(40).tx("chk", -3, 12.5).tx("chk", -40, 30.0, name="GROCER")
    together = _items(rich, quiet)
    assert _items(quiet)["u2"] == together["u2"]
    assert _items(rich)["u1"] == together["u1"]


def test_reports_encoded_apart_join_into_the_bytes_of_one_array(builder):
    signals, personas = _frames(builder)
    items = report_items(signals, personas)
    assert [user for user, _ in items] == ["u1", "u2"]
    assert joined_reports(items) == reports_json(signals, personas)
    pretty = orjson.dumps(analysis_report(signals, personas), option=orjson.OPT_INDENT_2)
    assert joined_reports(items, pretty=True) == pretty


def test_analyze_returns_the_reports_of_analysis_report(builder):
    """``analyze`` parses back what ``report_items`` encodes: the values ``analysis_report`` builds
    (ints stay ints, nulls for what is not finite, dates as text), in its order."""
    b = builder().card(2500, 5000, name="Visa", mask="4523").checking(300)
    b.payroll(range(-168, 1, 14), 1800)
    b.series("cc", range(-150, 1, 30), 15.49, name="NETFLIX.COM", primary="ENTERTAINMENT")
    dataset = Dataset.concat([b.dataset(), builder("u2").checking(10).dataset()])
    tables = {name: pa.Table.from_pandas(getattr(dataset, name), preserve_index=False) for name in TABLES}
    rule_set = load_rule_set()
    signals = compute_signals(Dataset.from_arrow(tables))
    expected = analysis_report(signals, assign_personas(signals, rule_set))
    found = analyze(tables, rule_set)
    assert found == expected
    assert [type(v) for v in _leaves(found)] == [type(v) for v in _leaves(expected)]


def _leaves(value):
    if isinstance(value, dict):
        return [leaf for key in sorted(value) for leaf in _leaves(value[key])]
    if isinstance(value, list):
        return [leaf for item in value for leaf in _leaves(item)]
    return [value]
