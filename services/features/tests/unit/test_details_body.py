"""A user's ``PersonaDetails`` line (what the recommender redeems by claim): canonical JSON on one line,
the same bytes however its keys were ordered (published again from the stored analysis, whose JSONB keeps
no order), text in any script kept as it is, and every value back when parsed."""

from __future__ import annotations

import json
from datetime import date
from typing import Any

from spendsense_cli.synthetic import build_user
from spendsense_features.domain.analysis import analyze
from spendsense_features.domain.publication import details_line
from spendsense_features.domain.rules import load_rule_set
from spendsense_profile.domain.ingest import parse_upload
from spendsense_shared.messaging.contracts import AccountKind, AnalysisReport, PersonaDetails


def _report(name: str) -> dict[str, Any]:
    user = build_user(3, as_of=date(2026, 10, 31))[0]
    for tx in user["transactions"]:
        tx["merchant_name"] = name
    parsed = parse_upload(json.dumps(user).encode(), today=date(2026, 11, 1))
    assert parsed.ok, parsed.problems
    [report] = analyze(parsed.tables, load_rule_set())
    return report


def _reordered(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _reordered(value[k]) for k in reversed(list(value))}
    if isinstance(value, list):
        return [_reordered(v) for v in value]
    return value


def test_details_are_one_canonical_line() -> None:
    report = _report("Café ☕ line\nbreak\u2028Ω")
    accounts = [AccountKind(type="depository", subtype="checking", name="Chèque\nplus\u2028")]
    details = PersonaDetails(report=AnalysisReport.model_validate(report), accounts=accounts)
    again = PersonaDetails(report=AnalysisReport.model_validate(_reordered(report)), accounts=accounts)
    body = details_line(details)
    assert body == details_line(again)
    assert b"\n" not in body
    parsed = json.loads(body)
    assert list(parsed) == sorted(parsed)
    assert PersonaDetails.model_validate(parsed) == details
