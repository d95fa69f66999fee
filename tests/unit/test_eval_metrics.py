"""The evaluation's metric arithmetic (``spendsense_cli.evaluation.metrics``): percentiles, disparity and
the four-fifths rule, coverage, accuracy and the confusion matrix, folded one user at a time."""

from __future__ import annotations

import math

from hypothesis import given, settings
from hypothesis import strategies as st

from spendsense_cli.evaluation.metrics import (
    FOUR_FIFTHS,
    MIN_GROUP_USERS,
    PERSONAS,
    Metrics,
    RecOutcome,
    UserOutcome,
    disparity,
    histogram,
    percentile,
    two_proportion_p_value,
)


def rec(kind: str = "education", **overrides: object) -> RecOutcome:
    fields: dict[str, object] = {
        "recommendation_id": "rec_1",
        "kind": kind,
        "item_id": "edu-x",
        "primary_fit": True,
        "any_fit": True,
        "explained": True,
        "trace_complete": True,
        "trace_verified": True,
        "tone_passed": True,
        "grounding_passed": True,
        "fell_back": False,
        "generator": "template",
        "status": "approved",
    }
    fields.update(overrides)
    return RecOutcome(**fields)  # type: ignore[arg-type]


def user(user_id: str, persona: str = "high_utilization", **overrides: object) -> UserOutcome:
    fields: dict[str, object] = {
        "user_id": user_id,
        "personas": {"30d": persona, "180d": persona},
        "behaviours": ["a", "b", "c"],
        "recommendations": [rec(), rec("offer")],
    }
    fields.update(overrides)
    return UserOutcome(**fields)  # type: ignore[arg-type]


@given(st.lists(st.floats(min_value=0, max_value=1e6), min_size=1, max_size=200), st.floats(0, 100))
def test_percentile_is_a_member_between_min_and_max_and_monotone(values: list[float], q: float) -> None:
    p = percentile(values, q)
    assert p in values
    assert min(values) <= p <= max(values)
    assert percentile(values, min(100.0, q + 10)) >= p  # type: ignore[operator]


def test_percentile_nearest_rank() -> None:
    values = list(range(1, 101))
    assert percentile(values, 50) == 50
    assert percentile(values, 95) == 95
    assert percentile(values, 100) == 100
    assert percentile([], 50) is None


@given(
    st.dictionaries(
        st.sampled_from(["a", "b", "c", "d"]),
        st.tuples(st.integers(0, 60), st.integers(1, 60)).map(lambda t: (min(t), t[1])),
        min_size=2,
    )
)
@settings(max_examples=200)
def test_disparity_ratio_is_lowest_over_highest_among_sized_groups(
    groups: dict[str, tuple[int, int]],
) -> None:
    result = disparity(groups)
    sized = {g: h / n for g, (h, n) in groups.items() if n >= MIN_GROUP_USERS}
    assert {g: v["n"] for g, v in result["groups"].items()} == {g: n for g, (_, n) in groups.items()}
    if len(sized) < 2:
        assert result["ratio"] is None
        assert not result["flagged"]
        return
    high, low = max(sized.values()), min(sized.values())
    expected = 1.0 if high == 0 else low / high
    assert math.isclose(result["ratio"], expected, abs_tol=1e-4)
    assert result["flagged"] == (high > 0 and round(expected, 4) < FOUR_FIFTHS)
    assert 0 <= result["ratio"] <= 1
    if result["significant"]:
        assert result["flagged"]
        assert result["p_value"] < 0.05


def test_four_fifths_boundary_and_small_groups() -> None:
    assert not disparity({"a": (80, 100), "b": (100, 100)})["flagged"]  # exactly 0.8: not below
    assert disparity({"a": (79, 100), "b": (100, 100)})["flagged"]
    tiny = disparity({"a": (0, 4), "b": (4, 4)})  # groups under MIN_GROUP_USERS are never compared
    assert tiny["ratio"] is None
    assert not tiny["flagged"]
    lopsided = disparity({"north": (5, 50), "south": (45, 50)})
    assert lopsided["lowest"] == "north"
    assert lopsided["highest"] == "south"
    assert lopsided["significant"]


def test_two_proportion_p_value_is_symmetric_and_one_when_equal() -> None:
    assert two_proportion_p_value(10, 50, 10, 50) == 1.0
    assert two_proportion_p_value(5, 50, 40, 50) == two_proportion_p_value(40, 50, 5, 50)
    assert two_proportion_p_value(5, 50, 40, 50) < 1e-6  # type: ignore[operator]
    assert two_proportion_p_value(0, 0, 1, 2) is None


@given(st.lists(st.floats(min_value=-1e5, max_value=1e5), max_size=300), st.integers(1, 20))
def test_histogram_counts_every_value_once(values: list[float], bins: int) -> None:
    result = histogram(values, bins)
    assert sum(result["counts"]) == len(values)
    if values:
        assert result["edges"][0] <= min(values) + 1e-4  # edges are rounded to 4 decimals
        assert len(result["edges"]) == len(result["counts"]) + 1


def test_coverage_needs_one_of_five_personas_and_three_behaviours() -> None:
    metrics = Metrics(source="offline", labelled=False)
    metrics.add(user("covered"))
    metrics.add(user("too-few", behaviours=["a", "b"]))
    metrics.add(user("wellness", persona="general_wellness"))
    metrics.add(user("also-covered", persona="savings_builder", behaviours=["a", "b", "c", "d"]))
    coverage = metrics.result()["coverage"]
    assert coverage["users"] == 2
    assert coverage["rate"] == 0.5


def test_rates_count_recommendations_not_users() -> None:
    metrics = Metrics(source="stack", labelled=False)
    metrics.add(user("u1", recommendations=[rec(), rec(explained=False), rec("offer", trace_verified=False)]))
    metrics.add(user("u2", recommendations=[rec(primary_fit=False), rec("offer", trace_complete=False)]))
    result = metrics.result()
    assert result["recommendations"] == {"total": 5, "education": 3, "offer": 2, "per_user": 2.5}
    assert result["explainability"]["rate"] == 0.8
    assert result["auditability"] == {"rate": 0.6, "audited": 3, "complete": 4, "verified": 4}
    assert result["relevance"]["rate"] == round(2 / 3, 4)


def test_accuracy_per_window_and_confusion_matrix() -> None:
    metrics = Metrics(source="offline", labelled=True)
    metrics.add(user("a", truth="high_utilization"))
    metrics.add(
        user("b", truth="savings_builder", personas={"30d": "savings_builder", "180d": "high_utilization"})
    )
    metrics.add(user("c", truth="savings_builder", persona="savings_builder"))
    accuracy = metrics.result()["accuracy"]
    assert accuracy["labelled"] == 3
    assert accuracy["180d"]["correct"] == 2
    assert accuracy["30d"]["correct"] == 3
    assert accuracy["180d"]["confusion"]["savings_builder"]["high_utilization"] == 1
    assert set(accuracy["180d"]["confusion"]) == set(PERSONAS)
    assert sum(sum(row.values()) for row in accuracy["180d"]["confusion"].values()) == 3


def test_no_labels_no_accuracy() -> None:
    metrics = Metrics(source="offline", labelled=False)
    metrics.add(user("a"))
    assert metrics.result()["accuracy"] is None


def test_guardrail_and_review_statistics() -> None:
    metrics = Metrics(source="stack", labelled=False)
    metrics.add(
        user(
            "a",
            recommendations=[
                rec(status="rejected", tone_passed=False),
                rec("offer", status="overridden", fell_back=True, generator="llm"),
                rec(status="pending_review", grounding_passed=False),
            ],
            refusals=["min_credit_score", "min_annual_income+min_credit_score"],
        )
    )
    g = metrics.result()["guardrails"]
    assert (g["tone_failures"], g["grounding_failures"], g["fallbacks"]) == (1, 1, 1)
    assert g["operator_rejections"] == 1
    assert g["operator_overrides"] == 1
    assert g["eligibility_refusals"] == 2
    assert g["refusals_by_rule"] == {"min_annual_income": 1, "min_credit_score": 2}
    assert g["generators"] == {"llm": 1, "template": 2}


def test_approval_and_offer_rates_by_group_flag_a_disadvantaged_group() -> None:
    metrics = Metrics(source="stack", labelled=True)
    for i in range(20):
        approved = [rec(status="approved") for _ in range(4)] + [rec("offer") for _ in range(3)]
        metrics.add(
            user(f"n{i}", truth="high_utilization", groups={"region": "north"}, recommendations=approved)
        )
        rejected = [rec(status="rejected") for _ in range(3)] + [rec(status="approved"), rec("offer")]
        metrics.add(
            user(f"s{i}", truth="high_utilization", groups={"region": "south"}, recommendations=rejected)
        )
    region = metrics.result()["fairness"]["attributes"]["region"]
    assert region["approval_rate"]["groups"]["south"]["rate"] == 0.4  # 2 of 5 approved, every user
    assert region["approval_rate"]["flagged"]
    assert region["approval_rate"]["lowest"] == "south"
    assert region["offer_rate"]["flagged"]
    flags = metrics.result()["fairness"]["flags"]
    assert {f["outcome"] for f in flags} == {"approvals", "offers"}
    assert all(f["significant"] for f in flags)
