"""Regenerates ``reports.json``: real analysis reports (features service code over synthetic users).

    .venv/bin/python services/recommender/tests/unit/data/make_reports.py

Per persona, the first ``PER_PERSONA`` synthetic users whose 180-day primary persona is that persona,
with their report (streams dropped: transaction ids are not used here) and their accounts' product
fields. The recommender's unit tests read the file, so they do not depend on the features code's
runtime, only on its output shape.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from spendsense_cli.synthetic import PERSONAS, iter_users
from spendsense_features.domain.analysis import analyze
from spendsense_features.domain.rules import load_rule_set
from spendsense_profile.domain.ingest import parse_upload

OUT = Path(__file__).with_name("reports.json")
PER_PERSONA = 3
USERS = 120


def _strip(report: dict[str, Any]) -> dict[str, Any]:
    for window in report["windows"].values():
        window["signals"]["subscriptions"].pop("streams", None)
    return report


def main() -> None:
    users = [user for user, _ in iter_users(USERS, seed=7)]
    upload = "\n".join(json.dumps(u) for u in users).encode()
    parsed = parse_upload(upload, filename="users.jsonl")
    assert parsed.ok, parsed.problems[:3]
    reports = {r["user_id"]: r for r in analyze(parsed.tables, load_rule_set())}
    accounts = {
        u["user_id"]: [
            {k: a.get(k) for k in ("type", "subtype", "name", "official_name", "holder_category")}
            for a in u["accounts"]
        ]
        for u in users
    }
    chosen: dict[str, list[dict[str, Any]]] = {p: [] for p in PERSONAS}
    for user_id in sorted(reports):
        persona = reports[user_id]["windows"]["180d"]["persona"]["primary"]
        if len(chosen[persona]) < PER_PERSONA:
            chosen[persona].append({"report": _strip(reports[user_id]), "accounts": accounts[user_id]})
    OUT.write_text(
        json.dumps({"rule_set_version": load_rule_set().version, "users": chosen}, indent=1) + "\n"
    )
    print({p: len(v) for p, v in chosen.items()})


if __name__ == "__main__":
    main()
