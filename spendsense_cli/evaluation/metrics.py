"""The evaluation's metrics (SPEC §8), computed from one record per user: pure, streaming, testable.

Both sources (``offline``: in-process with the services' domain code; ``stack``: read through the
gateway) reduce each user to a ``UserOutcome``; ``Metrics.add`` folds it in (memory grows with the
number of groups, not of users, but for two latency figures and five signal values per user, which the
percentiles and charts need); ``Metrics.result()`` is the ``metrics.json`` document
(``docs/metrics.schema.json``). Definitions are in ``docs/evaluation.md``.
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

PERSONAS: tuple[str, ...] = (
    "high_utilization",
    "variable_income_budgeter",
    "cash_flow_balancer",
    "subscription_heavy",
    "savings_builder",
    "general_wellness",
)
FIVE_PERSONAS = PERSONAS[:5]  # General Wellness does not count toward coverage (SPEC §5)
WINDOWS: tuple[str, ...] = ("30d", "180d")
GROUP_ATTRIBUTES: tuple[str, ...] = ("age_band", "region", "income_band")
MIN_BEHAVIOURS = 3
FOUR_FIFTHS = 0.8
SIGNIFICANCE = 0.05
MIN_GROUP_USERS = 5  # smaller groups are shown but never flagged: their rates say nothing
MAX_OFFERS = 3
# Signals whose distributions the report draws (180-day window), with their units.
DISTRIBUTION_SIGNALS: dict[str, str] = {
    "credit.max_utilization": "percent",
    "subscriptions.monthly_recurring_spend": "usd",
    "savings.net_inflow_monthly": "usd",
    "income.median_pay_gap_days": "days",
    "income.cash_flow_buffer_months": "months",
}
DECIDED = ("approved", "overridden", "rejected")
APPROVED = ("approved", "overridden")
ELIGIBILITY_RULES_NOT_REFUSALS = ("persona_signal_fit",)  # not fitting is irrelevance, not a refusal


@dataclass(frozen=True)
class RecOutcome:
    """One recommendation, as the evaluation sees it."""

    recommendation_id: str
    kind: str  # education | offer
    item_id: str
    primary_fit: bool  # the item is tagged with the user's primary persona
    any_fit: bool  # tagged with a persona the user matched, or fits one of their active signals
    explained: bool  # the rationale cites at least one of the user's own figures
    trace_complete: bool
    trace_verified: bool  # the chain holds and replaying the decision reproduces it
    tone_passed: bool
    grounding_passed: bool
    fell_back: bool  # the model's text was replaced by the template's
    generator: str
    status: str | None = None  # pending_review, approved, rejected, overridden, flagged (None: no review)


@dataclass
class UserOutcome:
    user_id: str
    personas: dict[str, str]  # window → primary persona
    behaviours: list[str]
    recommendations: list[RecOutcome]
    groups: dict[str, str] = field(default_factory=dict)  # age_band, region, income_band (when known)
    truth: str | None = None  # the generator's persona (180-day window), when labels are given
    refusals: list[str] = field(default_factory=list)  # per refused offer: its failed rules, "+"-joined
    generation_ms: float | None = None
    end_to_end_ms: float | None = None
    signals: dict[str, float | None] = field(default_factory=dict)  # DISTRIBUTION_SIGNALS values


def percentile(values: Sequence[float], q: float) -> float | None:
    """Nearest-rank percentile (q in 0..100) of ``values``; None when there are none."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[min(rank, len(ordered)) - 1]


def latency_summary(values: Sequence[float]) -> dict[str, Any]:
    def rounded(v: float | None) -> float | None:
        return None if v is None else round(v, 2)

    return {
        "count": len(values),
        "p50_ms": rounded(percentile(values, 50)),
        "p95_ms": rounded(percentile(values, 95)),
        "max_ms": rounded(max(values) if values else None),
        "mean_ms": rounded(sum(values) / len(values) if values else None),
    }


def ratio(numerator: int, denominator: int) -> float | None:
    return None if denominator == 0 else round(numerator / denominator, 4)


def two_proportion_p_value(hits_a: int, n_a: int, hits_b: int, n_b: int) -> float | None:
    """Two-sided p-value of a two-proportion z-test (pooled); None when it is undefined."""
    if n_a == 0 or n_b == 0:
        return None
    pooled = (hits_a + hits_b) / (n_a + n_b)
    spread = math.sqrt(pooled * (1 - pooled) * (1 / n_a + 1 / n_b))
    if spread == 0:
        return 1.0
    z = abs(hits_a / n_a - hits_b / n_b) / spread
    return round(math.erfc(z / math.sqrt(2)), 6)


def disparity(groups: Mapping[str, tuple[int, int]]) -> dict[str, Any]:
    """Rates by group (hits, trials) and the four-fifths test: the lowest rate over the highest among
    groups of at least ``MIN_GROUP_USERS`` trials; flagged below 0.8 (``significant``: the two rates
    also differ by a two-proportion z-test at 5 %)."""
    rates = {g: {"rate": ratio(h, n), "hits": h, "n": n} for g, (h, n) in sorted(groups.items())}
    sized = {g: (h, n) for g, (h, n) in groups.items() if n >= MIN_GROUP_USERS}
    out: dict[str, Any] = {
        "groups": rates,
        "ratio": None,
        "lowest": None,
        "highest": None,
        "flagged": False,
        "p_value": None,
        "significant": False,
    }
    if len(sized) < 2:
        return out
    lowest = min(sized, key=lambda g: (sized[g][0] / sized[g][1], g))
    highest = max(sized, key=lambda g: (sized[g][0] / sized[g][1], g))
    low_rate, high_rate = sized[lowest][0] / sized[lowest][1], sized[highest][0] / sized[highest][1]
    if high_rate == 0:
        return {**out, "ratio": 1.0, "lowest": lowest, "highest": highest}
    p_value = two_proportion_p_value(*sized[lowest], *sized[highest])
    disparity_ratio = round(low_rate / high_rate, 4)
    flagged = disparity_ratio < FOUR_FIFTHS
    return {
        **out,
        "ratio": disparity_ratio,
        "lowest": lowest,
        "highest": highest,
        "flagged": flagged,
        "p_value": p_value,
        "significant": flagged and p_value is not None and p_value < SIGNIFICANCE,
    }


def histogram(values: Iterable[float], bins: int = 12) -> dict[str, Any]:
    """Equal-width bins over the values' range: edges (bins + 1) and counts (bins)."""
    data = [v for v in values if v is not None and math.isfinite(v)]
    if not data:
        return {"edges": [], "counts": []}
    low, high = min(data), max(data)
    if high == low:
        return {"edges": [round(low, 4), round(low + 1, 4)], "counts": [len(data)]}
    width = (high - low) / bins
    counts = [0] * bins
    for v in data:
        counts[min(bins - 1, int((v - low) / width))] += 1
    return {"edges": [round(low + i * width, 4) for i in range(bins + 1)], "counts": counts}


class Metrics:
    """Folds users in one at a time; ``result()`` is the metrics document."""

    def __init__(self, *, source: str, labelled: bool) -> None:
        self.source = source
        self.labelled = labelled
        self.users = 0
        self.covered = 0
        self.persona_counts: dict[str, Counter[str]] = {w: Counter() for w in WINDOWS}
        self.truth_counts: Counter[str] = Counter()
        self.confusion: dict[str, Counter[tuple[str, str]]] = {w: Counter() for w in WINDOWS}
        self.behaviour_counts: Counter[str] = Counter()
        self.recs: Counter[str] = Counter()
        self.generation: list[float] = []
        self.end_to_end: list[float] = []
        self.signals: dict[str, list[float]] = {name: [] for name in DISTRIBUTION_SIGNALS}
        self.refusals: Counter[str] = Counter()
        self.refused_offers = 0
        self.generators: Counter[str] = Counter()
        self.statuses: Counter[str] = Counter()
        # attribute → group → counters
        self.group_users: dict[str, Counter[str]] = defaultdict(Counter)
        self.group_personas: dict[str, dict[str, Counter[str]]] = defaultdict(lambda: defaultdict(Counter))
        self.group_offers: dict[str, Counter[str]] = defaultdict(Counter)
        self.group_decided: dict[str, Counter[str]] = defaultdict(Counter)
        self.group_approved: dict[str, Counter[str]] = defaultdict(Counter)

    def add(self, user: UserOutcome) -> None:
        self.users += 1
        primary = user.personas.get("180d", "general_wellness")
        if primary in FIVE_PERSONAS and len(user.behaviours) >= MIN_BEHAVIOURS:
            self.covered += 1
        for window in WINDOWS:
            persona = user.personas.get(window)
            if persona is not None:
                self.persona_counts[window][persona] += 1
                if user.truth is not None:
                    self.confusion[window][(user.truth, persona)] += 1
        if user.truth is not None:
            self.truth_counts[user.truth] += 1
        self.behaviour_counts.update(user.behaviours)
        self.refused_offers += len(user.refusals)
        self.refusals.update(rule for offer in user.refusals for rule in offer.split("+"))
        self._add_recommendations(user.recommendations)
        if user.generation_ms is not None:
            self.generation.append(user.generation_ms)
        if user.end_to_end_ms is not None:
            self.end_to_end.append(user.end_to_end_ms)
        for name, value in user.signals.items():
            if name in self.signals and value is not None and math.isfinite(value):
                self.signals[name].append(value)
        self._add_groups(user, primary)

    def _add_recommendations(self, recs: Sequence[RecOutcome]) -> None:
        for rec in recs:
            c = self.recs
            c["total"] += 1
            c[rec.kind] += 1
            c["explained"] += rec.explained
            c["trace_complete"] += rec.trace_complete
            c["trace_verified"] += rec.trace_verified
            c["audited"] += rec.trace_complete and rec.trace_verified
            c["tone_failed"] += not rec.tone_passed
            c["grounding_failed"] += not rec.grounding_passed
            c["fell_back"] += rec.fell_back
            if rec.kind == "education":
                c["education_primary_fit"] += rec.primary_fit
                c["education_any_fit"] += rec.any_fit
            self.generators[rec.generator] += 1
            self.statuses[rec.status or "not_reviewed"] += 1

    def _add_groups(self, user: UserOutcome, primary: str) -> None:
        offers = sum(1 for r in user.recommendations if r.kind == "offer")
        decided = [r for r in user.recommendations if r.status in DECIDED]
        for attribute in GROUP_ATTRIBUTES:
            group = user.groups.get(attribute)
            if group is None:
                continue
            self.group_users[attribute][group] += 1
            self.group_personas[attribute][primary][group] += 1
            self.group_offers[attribute][group] += min(offers, MAX_OFFERS)
            self.group_decided[attribute][group] += len(decided)
            self.group_approved[attribute][group] += sum(1 for r in decided if r.status in APPROVED)

    # -- the document --------------------------------------------------------------------------------

    def result(self) -> dict[str, Any]:
        c = self.recs
        return {
            "source": self.source,
            "users": self.users,
            "recommendations": {
                "total": c["total"],
                "education": c["education"],
                "offer": c["offer"],
                "per_user": None if not self.users else round(c["total"] / self.users, 2),
            },
            "coverage": {
                "rate": ratio(self.covered, self.users),
                "users": self.covered,
                "min_behaviours": MIN_BEHAVIOURS,
                "behaviours": dict(sorted(self.behaviour_counts.items())),
            },
            "explainability": {"rate": ratio(c["explained"], c["total"]), "explained": c["explained"]},
            "relevance": {
                "rate": ratio(c["education_primary_fit"], c["education"]),
                "primary_fit": c["education_primary_fit"],
                "any_fit_rate": ratio(c["education_any_fit"], c["education"]),
                "education_items": c["education"],
            },
            "latency": {
                "generation": latency_summary(self.generation),
                "end_to_end": latency_summary(self.end_to_end),
                "generation_histogram": histogram(self.generation),
                "end_to_end_histogram": histogram(self.end_to_end),
            },
            "auditability": {
                "rate": ratio(c["audited"], c["total"]),
                "audited": c["audited"],
                "complete": c["trace_complete"],
                "verified": c["trace_verified"],
            },
            "personas": {window: {p: self.persona_counts[window][p] for p in PERSONAS} for window in WINDOWS},
            "accuracy": self._accuracy(),
            "fairness": self._fairness(),
            "guardrails": {
                "tone_failures": c["tone_failed"],
                "grounding_failures": c["grounding_failed"],
                "fallbacks": c["fell_back"],
                "generators": dict(sorted(self.generators.items())),
                "eligibility_refusals": self.refused_offers,
                "refusals_by_rule": dict(sorted(self.refusals.items())),
                "review": dict(sorted(self.statuses.items())),
                "operator_rejections": self.statuses["rejected"],
                "operator_overrides": self.statuses["overridden"],
            },
            "signals": {name: histogram(values) for name, values in self.signals.items()},
        }

    def _accuracy(self) -> dict[str, Any] | None:
        if not self.labelled or not self.truth_counts:
            return None
        labelled = sum(self.truth_counts.values())
        windows = {}
        for window in WINDOWS:
            matrix = self.confusion[window]
            correct = sum(n for (truth, guess), n in matrix.items() if truth == guess)
            windows[window] = {
                "rate": ratio(correct, labelled),
                "correct": correct,
                "confusion": {t: {g: matrix[(t, g)] for g in PERSONAS} for t in PERSONAS},
            }
        return {"labelled": labelled, "truth": {p: self.truth_counts[p] for p in PERSONAS}, **windows}

    def _fairness(self) -> dict[str, Any]:
        attributes: dict[str, Any] = {}
        for attribute in GROUP_ATTRIBUTES:
            users = self.group_users.get(attribute)
            if not users:
                continue
            personas = {
                p: disparity({g: (self.group_personas[attribute][p][g], n) for g, n in users.items()})
                for p in PERSONAS
            }
            offers = disparity(
                {g: (self.group_offers[attribute][g], MAX_OFFERS * n) for g, n in users.items()}
            )
            approvals = disparity(
                {g: (self.group_approved[attribute][g], self.group_decided[attribute][g]) for g in users}
            )
            attributes[attribute] = {
                "users": dict(sorted(users.items())),
                "persona_rates": personas,
                "offer_rate": offers,
                "approval_rate": approvals,
                "largest_disparity": _largest(personas, offers, approvals),
            }
        flags = [{"attribute": a, **entry} for a, body in attributes.items() for entry in _flags(body)]
        return {
            "threshold": FOUR_FIFTHS,
            "min_group_users": MIN_GROUP_USERS,
            "attributes": attributes,
            "flags": flags,
            "significant_flags": sum(1 for f in flags if f["significant"]),
        }


def _largest(
    personas: Mapping[str, dict[str, Any]], offers: dict[str, Any], approvals: dict[str, Any]
) -> dict[str, Any] | None:
    """The outcome with the lowest disparity ratio for one attribute."""
    candidates = [(f"persona:{p}", d) for p, d in personas.items()] + [
        ("offers", offers),
        ("approvals", approvals),
    ]
    rated = [(name, d) for name, d in candidates if d["ratio"] is not None]
    if not rated:
        return None
    name, d = min(rated, key=lambda item: (item[1]["ratio"], item[0]))
    return {
        "outcome": name,
        "ratio": d["ratio"],
        "lowest": d["lowest"],
        "highest": d["highest"],
        "flagged": d["flagged"],
    }


def _flags(body: Mapping[str, Any]) -> list[dict[str, Any]]:
    outcomes = [(f"persona:{p}", d) for p, d in body["persona_rates"].items()]
    outcomes += [("offers", body["offer_rate"]), ("approvals", body["approval_rate"])]
    return [
        {
            "outcome": name,
            "ratio": d["ratio"],
            "lowest": d["lowest"],
            "highest": d["highest"],
            "p_value": d["p_value"],
            "significant": d["significant"],
        }
        for name, d in outcomes
        if d["flagged"]
    ]
