"""Fairness on data built to be unfair: one region's users are given worse credit (every card with a
limit run up to 92 % of it). The offline evaluation, with the real parser, signal, persona and
recommendation code, must flag that region (four-fifths rule, significant) in metrics.json and in both
reports; the other attributes, independent of region in the generator, must not show that disparity."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from spendsense_cli.evaluation.runner import evaluate_offline
from spendsense_cli.synthetic import generate

WORSE_CREDIT_REGION = "south"
USERS = 60


def give_worse_credit(user: dict[str, Any]) -> dict[str, Any]:
    """Every card with a known limit carries a balance of 92 % of it (the account and the liability)."""
    balances = {}
    for account in user["accounts"]:
        limit = account["balances"].get("limit")
        if account["type"] == "credit" and limit:
            account["balances"]["current"] = round(0.92 * limit, 2)
            balances[account["account_id"]] = account["balances"]["current"]
    for liability in user["liabilities"]["credit"]:
        if liability["account_id"] in balances:
            liability["last_statement_balance"] = balances[liability["account_id"]]
    return user


def test_a_region_given_worse_credit_is_flagged(tmp_path: Path) -> None:
    summary = generate(users=USERS, seed=20261129, out=tmp_path / "fair.jsonl")
    labels = {r["user_id"]: r for r in map(json.loads, summary.labels_path.read_text().splitlines())}
    unfair = tmp_path / "unfair.jsonl"
    with summary.path.open() as source, unfair.open("w") as target:
        for line in source:
            user = json.loads(line)
            if labels[user["user_id"]]["region"] == WORSE_CREDIT_REGION:
                user = give_worse_credit(user)
            target.write(json.dumps(user) + "\n")

    result = evaluate_offline(unfair, tmp_path / "out", labels=summary.labels_path, processes=2, say=print)

    fairness = result.metrics["fairness"]
    region = fairness["attributes"]["region"]
    high_utilization = region["persona_rates"]["high_utilization"]
    assert high_utilization["highest"] == WORSE_CREDIT_REGION
    assert high_utilization["groups"][WORSE_CREDIT_REGION]["rate"] >= 0.8
    assert high_utilization["flagged"]
    assert high_utilization["significant"]
    assert region["largest_disparity"]["outcome"].startswith("persona:")
    flagged = {(f["attribute"], f["outcome"]) for f in fairness["flags"] if f["significant"]}
    assert ("region", "persona:high_utilization") in flagged
    # Age and income are drawn independently of region: worse credit in one region is not theirs.
    assert ("age_band", "persona:high_utilization") not in flagged
    assert ("income_band", "persona:high_utilization") not in flagged
    assert fairness["significant_flags"] >= 1

    markdown = result.files["markdown"].read_text()
    assert f"Region: persona:high_utilization ratio {high_utilization['ratio']:.2f}" in markdown
    page = result.files["html"].read_text()
    assert 'data-flag="region:persona:high_utilization"' in page
