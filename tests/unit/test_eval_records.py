"""What the evaluation reads from a decision trace and from signals (``spendsense_cli.evaluation.records``):
explainability, completeness, fit and behaviours, on traces the recommender's own code produced."""

from __future__ import annotations

import asyncio
import copy
from typing import Any

import pytest

from spendsense_cli.evaluation.records import (
    behaviours,
    chain_verified,
    decisions_shared_between_replays,
    explained,
    rec_outcome,
    refusals,
    trace_complete,
)
from spendsense_cli.synthetic import build_user
from spendsense_features.domain.analysis import analyze
from spendsense_features.domain.rules import load_rule_set
from spendsense_profile.domain.ingest import parse_upload
from spendsense_recommender.domain import (
    TemplateWriter,
    UserFacts,
    append_operator_action,
    build_recommendations,
)
from spendsense_recommender.domain.snapshot import snapshot_of
from spendsense_shared.messaging.contracts import AnalysisReport


@pytest.fixture(scope="module")
def generated() -> tuple[dict[str, Any], list[dict[str, Any]], Any]:
    import json

    user, _ = build_user(3, seed=5)
    parsed = parse_upload(json.dumps(user).encode(), filename="u.json")
    assert parsed.ok
    rule_set = load_rule_set()
    [report] = analyze(parsed.tables, rule_set)
    snapshot = snapshot_of(AnalysisReport.model_validate(report))
    result = asyncio.run(
        build_recommendations(
            snapshot,
            UserFacts.derive(snapshot, user["accounts"]),
            rule_set_version=rule_set.version,
            upload_id="test",
            writer=TemplateWriter(),
        )
    )
    return report, [item.trace for item in result.items], result.decision


def test_every_generated_recommendation_is_explained_complete_and_verified(generated: Any) -> None:
    _, traces, _ = generated
    assert chain_verified(traces)
    with decisions_shared_between_replays():
        outcomes = [rec_outcome(t, chain_ok=True) for t in traces]
    assert all(o.explained and o.trace_complete and o.trace_verified for o in outcomes)
    assert {o.kind for o in outcomes} == {"education", "offer"}


def test_a_rationale_citing_only_guide_values_is_not_explained(generated: Any) -> None:
    _, traces, _ = generated
    trace = copy.deepcopy(traces[0])
    trace["citable"]["facts"] = [f for f in trace["citable"]["facts"] if f["key"].startswith("guide.")]
    assert not explained(trace)
    trace["output"]["rationale"] = ""
    assert not explained(trace)


def test_a_reviewed_item_needs_the_operator_action_in_its_trace(generated: Any) -> None:
    _, traces, _ = generated
    assert trace_complete(traces[0], None)
    assert not trace_complete(traces[0], "approved")
    acted = append_operator_action(traces[0], {"operator_id": "op", "action": "approved", "at": "2026-11-29"})
    assert trace_complete(acted, "approved")
    broken = copy.deepcopy(traces[0])
    del broken["guardrails"]["grounding"]
    assert not trace_complete(broken, None)


def test_an_edited_trace_fails_replay_or_chain(generated: Any) -> None:
    _, traces, _ = generated
    edited = copy.deepcopy(traces)
    edited[1]["selection"]["score"] += 1
    assert not chain_verified(edited)
    assert not rec_outcome(edited[1], chain_ok=True).trace_verified  # the replay differs too


def test_replays_sharing_decisions_agree_with_plain_replays(generated: Any) -> None:
    _, traces, _ = generated
    plain = [rec_outcome(t, chain_ok=True) for t in traces]
    with decisions_shared_between_replays():
        shared = [rec_outcome(t, chain_ok=True) for t in traces]
    assert plain == shared


def test_behaviours_and_refusals(generated: Any) -> None:
    report, _, decision = generated
    found = behaviours(report["windows"]["180d"]["signals"])
    assert "credit_card_use" in found or "regular_income" in found
    assert behaviours({}) == []
    assert behaviours({"cash_flow": {"overdraft_fee_count": 2}, "credit": {"card_count": 1}}) == [
        "credit_card_use",
        "fees",
    ]
    refused = refusals(decision.rejected_offers)
    assert all("persona_signal_fit" not in r for r in refused)
    only_fit = [{"checks": [{"rule": "persona_signal_fit", "passed": False}]}]
    assert refusals(only_fit) == []
    assert refusals([{"checks": [{"rule": "min_credit_score", "passed": False}]}]) == ["min_credit_score"]
