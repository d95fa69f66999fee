"""Persona rule sets: the shipped rules at their boundaries, validation, and the safe evaluator."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from spendsense_features.domain.rules import (
    TOLERANCE,
    Criterion,
    Group,
    RuleSetError,
    assign_personas,
    evaluate,
    load_rule_set,
    parse_rule_set,
)
from spendsense_features.domain.signals import SIGNAL_SCHEMA

RULES = load_rule_set()

# A row that matches nothing: no cards, no pay, no activity.
NEUTRAL: dict[str, Any] = {
    key: (False if kind == "bool" else "none" if kind == "string" else 0.0)
    for key, kind in SIGNAL_SCHEMA.items()
}
NEUTRAL.update(
    {
        "credit.max_utilization": np.nan,
        "subscriptions.subscription_share": np.nan,
        "savings.growth_rate": np.nan,
        "income.median_pay_gap_days": np.nan,
        "income.cash_flow_buffer_months": np.nan,
    }
)


def frame(*rows: dict[str, Any]) -> pd.DataFrame:
    return pd.DataFrame(
        [{"user_id": f"u{i}", "window": "30d", **NEUTRAL, **row} for i, row in enumerate(rows)]
    )


def persona(**signals: Any) -> tuple[str, list[dict[str, Any]]]:
    out = assign_personas(frame(signals), RULES).iloc[0]
    return out["primary"], out["matched"]


def test_shipped_rule_set():
    assert RULES.version == "personas-v1"
    assert [p.id for p in RULES.personas] == [
        "high_utilization",
        "variable_income_budgeter",
        "cash_flow_balancer",
        "subscription_heavy",
        "savings_builder",
    ]
    assert RULES.fallback_id == "general_wellness"
    assert persona() == ("general_wellness", [])


@pytest.mark.parametrize(
    ("signals", "expected"),
    [
        ({"credit.max_utilization": 0.5}, True),
        ({"credit.max_utilization": 0.4999}, False),
        ({"credit.interest_charges": 0.01}, True),
        ({"credit.interest_charges": 0.0}, False),
        ({"credit.minimum_payment_only": True}, True),
        ({"credit.overdue": True}, True),
    ],
)
def test_high_utilization(signals, expected):
    primary, _ = persona(**signals)
    assert (primary == "high_utilization") is expected


@pytest.mark.parametrize(
    ("gap", "buffer", "expected"),
    [
        (46, 0.5, True),
        (45, 0.5, False),
        (46, 1.0, False),
        (46, 0.99, True),
        (np.nan, 0.5, False),
        (60, np.nan, False),
    ],
)
def test_variable_income_budgeter(gap, buffer, expected):
    primary, _ = persona(**{"income.median_pay_gap_days": gap, "income.cash_flow_buffer_months": buffer})
    assert (primary == "variable_income_budgeter") is expected


@pytest.mark.parametrize(
    ("spending", "income", "fees", "expected"),
    [
        (1050.0, 1000.0, 0, True),  # exactly 1.05 x income
        (1049.99, 1000.0, 0, False),
        (10.0, 0.0, 0, True),  # no income at all
        (0.0, 0.0, 0, False),  # no activity is not overspending
        (100.0, 1000.0, 1, True),  # one overdraft / NSF fee
    ],
)
def test_cash_flow_balancer(spending, income, fees, expected):
    primary, _ = persona(
        **{"cash_flow.spending": spending, "cash_flow.income": income, "cash_flow.overdraft_fee_count": fees}
    )
    assert (primary == "cash_flow_balancer") is expected


@pytest.mark.parametrize(
    ("count", "spend", "share", "expected"),
    [
        (3, 50.0, 0.01, True),
        (3, 49.99, 0.0999, False),
        (3, 10.0, 0.10, True),
        (2, 500.0, 0.5, False),
        (3, 10.0, np.nan, False),
    ],
)
def test_subscription_heavy(count, spend, share, expected):
    primary, _ = persona(
        **{
            "subscriptions.recurring_merchant_count": count,
            "subscriptions.monthly_recurring_spend": spend,
            "subscriptions.subscription_share": share,
        }
    )
    assert (primary == "subscription_heavy") is expected


@pytest.mark.parametrize(
    ("growth", "monthly", "flag_30", "expected"),
    [
        (0.02, 0.0, False, True),
        (0.0199, 199.99, False, False),
        (np.nan, 200.0, False, True),
        (0.05, 500.0, True, False),  # a card at 30 % or more
    ],
)
def test_savings_builder(growth, monthly, flag_30, expected):
    primary, _ = persona(
        **{"savings.growth_rate": growth, "savings.net_inflow_monthly": monthly, "credit.flag_30": flag_30}
    )
    assert (primary == "savings_builder") is expected


def test_priority_and_every_match_with_the_criteria_that_fired():
    primary, matched = persona(
        **{
            "credit.max_utilization": 0.2,
            "credit.interest_charges": 12.0,
            "subscriptions.recurring_merchant_count": 4,
            "subscriptions.monthly_recurring_spend": 80.0,
            "subscriptions.subscription_share": 0.02,
            "cash_flow.overdraft_fee_count": 2,
            "cash_flow.spending": 100.0,
            "cash_flow.income": 1000.0,
        }
    )
    assert primary == "high_utilization"
    assert matched == [
        {"id": "high_utilization", "criteria": ["interest_charges"]},
        {
            "id": "cash_flow_balancer",
            "criteria": ["overdraft_or_nsf_fee"],
        },  # not has_spending: its group failed
        {
            "id": "subscription_heavy",
            "criteria": ["at_least_3_recurring_merchants", "monthly_recurring_spend_at_least_50"],
        },
    ]


def test_assignments_carry_the_version_per_user_and_window():
    signals = frame({"credit.overdue": True}, {})
    signals.loc[1, "window"] = "180d"
    out = assign_personas(signals, RULES)
    assert out.to_dict(orient="list") == {
        "user_id": ["u0", "u1"],
        "window": ["30d", "180d"],
        "primary": ["high_utilization", "general_wellness"],
        "matched": [[{"id": "high_utilization", "criteria": ["card_overdue"]}], []],
        "rule_set_version": ["personas-v1", "personas-v1"],
    }


def test_end_to_end_from_a_dataset(builder):
    """The hand-built dataset with a card at exactly 50 % utilization lands on High Utilization."""
    b = builder().card(2500, 5000).checking(2000).payroll(range(-168, 1, 14), 1500)
    out = assign_personas(b.signals(), RULES)
    assert out["primary"].tolist() == ["high_utilization", "high_utilization"]


def test_end_to_end_pay_gap_boundary(builder):
    def primary(step: int) -> str:
        b = builder().checking(100).payroll([-3 * step, -2 * step, -step, 0], 3000)
        b.tx("chk", -1, 2800, "RENT", "RENT_AND_UTILITIES", "RENT_AND_UTILITIES_RENT")
        return assign_personas(b.signals(), RULES)["primary"].iloc[0]

    assert primary(46) == "variable_income_budgeter"
    assert primary(45) == "general_wellness"


def test_end_to_end_spending_exactly_105_percent_of_income(builder):
    b = builder().checking(100).payroll([-10], 1000.0)
    b.tx("chk", -5, 1049.99, "RENT", "RENT_AND_UTILITIES", "RENT_AND_UTILITIES_RENT")
    b.tx("chk", -4, 0.01, "GUM")
    assert assign_personas(b.signals(), RULES)["primary"].iloc[0] == "cash_flow_balancer"


def test_end_to_end_savings_growth_exactly_two_percent(builder):
    b = builder().checking(1000).account("sav", subtype="savings", balance=5100)
    b.tx("sav", -10, -100.0, "TRANSFER", "TRANSFER_IN", "TRANSFER_IN_ACCOUNT_TRANSFER")
    b.payroll([-12], 3000).tx("chk", -1, 500.0, "GROCER", "FOOD_AND_DRINK")
    out = assign_personas(b.signals(), RULES)
    assert out["primary"].iloc[0] == "savings_builder"
    assert out["matched"].iloc[0] == [
        {
            "id": "savings_builder",
            "criteria": ["savings_growth_at_least_2pct", "all_cards_below_30pct_utilization"],
        }
    ]


# --------------------------------------------------------------------------------------------------
# Validation


def _doc(drop: tuple[str, ...] = (), **criterion: Any) -> dict[str, Any]:
    leaf = {"name": "c1", "signal": "credit.max_utilization", "op": ">=", "value": 0.5, **criterion}
    for key in drop:
        leaf.pop(key)
    return {"version": "t1", "personas": [{"id": "p1", "when": {"any": [leaf]}}]}


@pytest.mark.parametrize(
    ("document", "message"),
    [
        (
            _doc(signal="credit.max_utilisation"),
            r"persona 'p1', criterion 'c1': unknown signal 'credit.max_utilisation'",
        ),
        (_doc(value="high"), r"criterion 'c1': value 'high' does not match the signal type 'number'"),
        (_doc(value=True), r"does not match the signal type 'number'"),
        (_doc(op="=>"), r"operator '=>' is not valid"),
        (_doc(signal="credit.overdue", op=">", value=True), r"operator '>' is not valid for bool"),
        (_doc(other="cash_flow.income"), r"exactly one of 'value' or 'other'"),
        (_doc(factor=2), r"'factor' only applies with 'other'"),
        (_doc(drop=("value",), valu=3), r"unknown key\(s\) \['valu'\]"),
        (_doc(signal="income.pay_frequency", op="in", value="weekly"), r"needs a non-empty list of strings"),
        ({"personas": []}, r"missing 'version'"),
        ({"version": "t1", "personas": []}, r"'personas' must be a non-empty list"),
        ({"version": "t1", "personas": [{"id": "p1"}]}, r"persona 'p1': missing 'when'"),
        ({"version": "t1", "personas": [{"id": "p1", "when": {"all": []}}]}, r"non-empty list"),
        ({"version": "t1", "personas": [{"id": "p1", "when": {"allof": [1]}}]}, r"expected \{all"),
        ("just text", r"expected a mapping"),
    ],
)
def test_invalid_rule_sets_are_rejected_with_a_clear_message(document, message):
    with pytest.raises(RuleSetError, match=message):
        parse_rule_set(document)


def test_duplicate_ids_and_names_are_rejected():
    leaf = {"name": "c", "signal": "credit.overdue", "op": "==", "value": True}
    twice = {"version": "t", "personas": [{"id": "p", "when": leaf}, {"id": "p", "when": leaf}]}
    with pytest.raises(RuleSetError, match="duplicate persona id 'p'"):
        parse_rule_set(twice)
    same_names = {"version": "t", "personas": [{"id": "p", "when": {"all": [leaf, leaf]}}]}
    with pytest.raises(RuleSetError, match="duplicate criterion name 'c'"):
        parse_rule_set(same_names)
    fallback = {"version": "t", "fallback": "p", "personas": [{"id": "p", "when": leaf}]}
    with pytest.raises(RuleSetError, match="duplicate persona id 'p'"):
        parse_rule_set(fallback)


def test_comparisons_between_signals_must_have_matching_types():
    doc = _doc(drop=("value",))
    leaf = doc["personas"][0]["when"]["any"][0]
    leaf.update({"other": "credit.overdue"})
    with pytest.raises(
        RuleSetError, match=r"cannot compare number signal 'credit\.max_utilization' with bool"
    ):
        parse_rule_set(doc)
    leaf.update({"other": "income.pay_frequency", "signal": "income.pay_frequency", "op": "==", "factor": 2})
    with pytest.raises(RuleSetError, match="'factor' needs number signals"):
        parse_rule_set(doc)


def test_load_from_a_file(tmp_path: Path):
    path = tmp_path / "rules.yaml"
    path.write_text(yaml.safe_dump(_doc()))
    assert load_rule_set(path).version == "t1"
    path.write_text("version: [unclosed")
    with pytest.raises(RuleSetError, match="not valid YAML"):
        load_rule_set(path)


def test_rule_files_are_data_not_code(tmp_path: Path):
    path = tmp_path / "evil.yaml"
    path.write_text(
        "version: x\npersonas:\n  - id: p\n    when: !!python/object/apply:os.system ['echo hi']\n"
    )
    with pytest.raises(RuleSetError, match="not valid YAML"):
        load_rule_set(path)


def test_null_signals_make_every_comparison_false():
    signals = frame({"credit.max_utilization": np.nan, "income.pay_frequency": None, "credit.overdue": None})
    for criterion in (
        Criterion("a", "credit.max_utilization", "!=", value=0.5),
        Criterion("b", "credit.max_utilization", "<", value=1.0),
        Criterion("c", "income.pay_frequency", "not_in", value=("weekly",)),
        Criterion("d", "income.pay_frequency", "!=", value="weekly"),
        Criterion("e", "credit.overdue", "!=", value=True),
        Criterion("f", "cash_flow.spending", ">=", other="credit.max_utilization", factor=1.0),
    ):
        assert evaluate(criterion, signals).tolist() == [False], criterion.name


# --------------------------------------------------------------------------------------------------
# Vectorized evaluation == a plain row-by-row evaluation

_NUMBERS = ["credit.max_utilization", "cash_flow.spending", "cash_flow.income", "income.median_pay_gap_days"]
_BOOLS = ["credit.overdue", "credit.flag_30"]
_STRINGS = ["income.pay_frequency"]
_NUMBER_VALUES = [0.0, 0.5, 1.0, 1.05, 45.0, 46.0, 200.0, -1.0, 0.4999]
_WORDS = ["weekly", "monthly", "none"]


def _number_leaf(i: int) -> st.SearchStrategy[Criterion]:
    ops = st.sampled_from([">=", ">", "<=", "<", "==", "!="])
    by_value = st.builds(
        lambda s, op, v: Criterion(f"n{i}", s, op, value=v),
        st.sampled_from(_NUMBERS),
        ops,
        st.sampled_from(_NUMBER_VALUES),
    )
    by_other = st.builds(
        lambda s, op, o, f: Criterion(f"n{i}", s, op, other=o, factor=f),
        st.sampled_from(_NUMBERS),
        ops,
        st.sampled_from(_NUMBERS),
        st.sampled_from([1.0, 1.05, 0.5]),
    )
    return st.one_of(by_value, by_other)


def _leaf(i: int) -> st.SearchStrategy[Criterion]:
    boolean = st.builds(
        lambda s, op, v: Criterion(f"b{i}", s, op, value=v),
        st.sampled_from(_BOOLS),
        st.sampled_from(["==", "!="]),
        st.booleans(),
    )
    words = st.one_of(
        st.builds(
            lambda op, v: Criterion(f"s{i}", _STRINGS[0], op, value=v),
            st.sampled_from(["==", "!="]),
            st.sampled_from(_WORDS),
        ),
        st.builds(
            lambda op, v: Criterion(f"s{i}", _STRINGS[0], op, value=tuple(v)),
            st.sampled_from(["in", "not_in"]),
            st.lists(st.sampled_from(_WORDS), min_size=1, max_size=2),
        ),
    )
    return st.one_of(_number_leaf(i), boolean, words)


_TREES = st.recursive(
    st.integers(0, 99).flatmap(_leaf),
    lambda children: st.builds(
        Group, st.sampled_from(["all", "any"]), st.lists(children, min_size=1, max_size=3).map(tuple)
    ),
    max_leaves=6,
)
_ROWS = st.lists(
    st.fixed_dictionaries(
        {
            **{k: st.one_of(st.none(), st.sampled_from(_NUMBER_VALUES)) for k in _NUMBERS},
            **{k: st.one_of(st.none(), st.booleans()) for k in _BOOLS},
            **{k: st.one_of(st.none(), st.sampled_from(_WORDS)) for k in _STRINGS},
        }
    ),
    min_size=1,
    max_size=12,
)


def _reference(node: Criterion | Group, row: dict[str, Any]) -> bool:
    """The obvious, one-row-at-a-time semantics."""
    if isinstance(node, Group):
        results = [_reference(child, row) for child in node.children]
        return all(results) if node.mode == "all" else any(results)
    left = row[node.signal]
    right = row[node.other] if node.other is not None else node.value
    if left is None or right is None:
        return False
    if node.op in ("in", "not_in"):
        return (left in right) is (node.op == "in")
    if isinstance(left, bool | str):
        return (left == right) is (node.op == "==")
    right = node.factor * right if node.other is not None else right
    tol = TOLERANCE * max(1.0, abs(right))
    return {
        ">=": left >= right - tol,
        ">": left > right + tol,
        "<=": left <= right + tol,
        "<": left < right - tol,
        "==": abs(left - right) <= tol,
        "!=": abs(left - right) > tol,
    }[node.op]


@settings(max_examples=150, deadline=None)
@given(tree=_TREES, rows=_ROWS)
def test_vectorized_evaluation_matches_row_by_row(tree, rows):
    signals = pd.DataFrame(rows).astype({k: float for k in _NUMBERS})
    signals = signals.astype({k: object for k in _BOOLS + _STRINGS})
    got = evaluate(tree, signals).tolist()
    expected = [
        _reference(tree, {k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in r.items()})
        for r in rows
    ]
    assert got == expected
