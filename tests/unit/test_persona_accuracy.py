"""Persona accuracy against the generator's ground truth: the real parser, signal and rule code on 500
synthetic users must agree with the labels for ≥ 95 % of them on the 180-day window."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

from spendsense_cli.main import analyze_file
from spendsense_cli.synthetic import generate


def test_persona_accuracy_on_500_generated_users_is_at_least_95_percent(tmp_path: Path) -> None:
    summary = generate(users=500, seed=20261125, out=tmp_path / "users.jsonl")
    labels = {
        row["user_id"]: row["persona"]
        for row in map(json.loads, summary.labels_path.read_text().splitlines())
    }
    reports = analyze_file(summary.path)
    predicted = {r["user_id"]: r["windows"]["180d"]["persona"]["primary"] for r in reports}
    assert set(predicted) == set(labels)

    confusion = Counter((labels[u], predicted[u]) for u in labels)
    correct = sum(n for (truth, guess), n in confusion.items() if truth == guess)
    accuracy = correct / len(labels)
    mistakes = {f"{t} → {g}": n for (t, g), n in confusion.items() if t != g}
    print(f"\npersona accuracy (180d, 500 users): {accuracy:.1%}; confusions: {mistakes or 'none'}")
    assert accuracy >= 0.95, mistakes
    # Every persona is represented, so accuracy is not carried by one class.
    assert set(labels.values()) == {
        "high_utilization",
        "variable_income_budgeter",
        "cash_flow_balancer",
        "subscription_heavy",
        "savings_builder",
        "general_wellness",
    }
