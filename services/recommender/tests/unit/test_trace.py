"""Decision traces: hash chain, tamper detection, operator actions, replay."""

from __future__ import annotations

import asyncio
import copy
import itertools
import json
from typing import Any

import pytest

from spendsense_recommender.domain import (
    GENESIS,
    Catalog,
    append_operator_action,
    build_recommendations,
    content_hash,
    load_catalog,
    parse_catalog,
    replay,
    seal_chain,
    user_facts_from_report,
    verify_chain,
)

Json = dict[str, Any]


def traces_for(entry: Json, previous_hash: str | None = None, **kwargs: Any) -> list[Json]:
    user = user_facts_from_report(entry["report"], entry["accounts"], 720)
    kwargs.setdefault("upload_id", "upl-1")
    result = asyncio.run(
        build_recommendations(
            entry["report"], user, rule_set_version="personas-v1", previous_hash=previous_hash, **kwargs
        )
    )
    return [copy.deepcopy(item.trace) for item in result.items]


@pytest.fixture
def chain(real_users: Json) -> list[Json]:
    return traces_for(real_users["users"]["high_utilization"][0])


def test_a_fresh_chain_verifies(chain: list[Json]) -> None:
    result = verify_chain(chain)
    assert result.ok
    assert result.checked == len(chain) >= 4
    assert chain[0]["chain"]["previous_hash"] == GENESIS
    for earlier, later in itertools.pairwise(chain):
        assert later["chain"]["previous_hash"] == earlier["chain"]["hash"]


def test_chains_continue_across_runs(real_users: Json, chain: list[Json]) -> None:
    second = traces_for(
        real_users["users"]["high_utilization"][0],
        previous_hash=chain[-1]["chain"]["hash"],
        upload_id="upl-2",
    )
    assert verify_chain([*chain, *second]).ok
    assert verify_chain(second, previous_hash=chain[-1]["chain"]["hash"]).ok
    assert not verify_chain(second).ok  # it does not start the chain


def test_the_chain_survives_a_json_round_trip_with_reordered_keys(chain: list[Json]) -> None:
    def reorder(value: Any) -> Any:
        if isinstance(value, dict):
            return {k: reorder(value[k]) for k in reversed(list(value))}
        return [reorder(v) for v in value] if isinstance(value, list) else value

    stored = [reorder(json.loads(json.dumps(t))) for t in chain]
    assert verify_chain(stored).ok


@pytest.mark.parametrize(
    "edit",
    [
        lambda t: t["output"].update(rationale=t["output"]["rationale"] + " Act now!"),
        lambda t: (
            t["eligibility"][0].update(passed=not t["eligibility"][0]["passed"])
            if t["eligibility"]
            else t["selection"].update(score=1)
        ),
        lambda t: t["input"]["selection_input"]["user"].update(credit_score=850),
        lambda t: t["persona"].update(primary="savings_builder"),
        lambda t: t["generator"].update(used="llm"),
    ],
)
def test_an_edit_breaks_the_chain_and_the_verifier_finds_it(chain: list[Json], edit: Any) -> None:
    edit(chain[2])
    result = verify_chain(chain)
    assert not result.ok
    assert result.broken_at == 2
    assert result.trace_id == chain[2]["recommendation_id"]
    assert "edited" in (result.reason or "")


def test_an_edit_with_a_recomputed_content_hash_still_breaks_the_chain(chain: list[Json]) -> None:
    chain[1]["output"]["rationale"] = "Rewritten."
    chain[1]["chain"]["content_hash"] = content_hash(chain[1])
    result = verify_chain(chain)
    assert not result.ok
    assert result.broken_at == 1


def test_resealing_an_edited_trace_breaks_the_next_link(chain: list[Json]) -> None:
    chain[1]["output"]["rationale"] = "Rewritten."
    chain[1] = seal_chain([{k: v for k, v in chain[1].items() if k != "chain"}], chain[0]["chain"]["hash"])[0]
    result = verify_chain(chain)
    assert not result.ok
    assert result.broken_at == 2
    assert "previous_hash" in (result.reason or "")


@pytest.mark.parametrize("change", ["remove", "swap"])
def test_removing_or_reordering_traces_is_detected(chain: list[Json], change: str) -> None:
    if change == "remove":
        del chain[1]
    else:
        chain[1], chain[2] = chain[2], chain[1]
    result = verify_chain(chain)
    assert not result.ok
    assert result.broken_at == 1


def test_operator_actions_are_chained_and_do_not_break_the_decision_seal(chain: list[Json]) -> None:
    reviewed = append_operator_action(
        chain[0], {"operator_id": "op-7", "action": "approve", "at": "2026-11-01T10:00:00Z"}
    )
    reviewed = append_operator_action(
        reviewed, {"operator_id": "op-8", "action": "flag", "at": "2026-11-01T11:00:00Z", "reason": "check"}
    )
    assert chain[0]["operator_actions"] == []  # the input is not modified
    chain[0] = reviewed
    assert verify_chain(chain).ok
    assert reviewed["operator_actions"][0]["previous_hash"] == reviewed["chain"]["hash"]
    reviewed["operator_actions"][0]["action"] = "reject"
    result = verify_chain(chain)
    assert not result.ok
    assert result.broken_at == 0
    assert "operator_actions[0]" in (result.reason or "")


def test_an_unsealed_trace_is_reported(chain: list[Json]) -> None:
    del chain[3]["chain"]
    result = verify_chain(chain)
    assert (result.ok, result.broken_at, result.reason) == (False, 3, "trace is not sealed (no chain)")


# -- replay -------------------------------------------------------------------------------------------


def test_replay_recomputes_the_same_decision(real_users: Json) -> None:
    for persona, entries in real_users["users"].items():
        for trace in traces_for(entries[0], dismissed={"edu-credit-score-basics"}):
            result = replay(json.loads(json.dumps(trace)))
            assert result.matches, (persona, trace["catalog"]["item_id"], result.differences)
            assert result.decision is not None
            assert result.decision.pick(trace["catalog"]["item_id"]) is not None


def test_replay_detects_changed_inputs(chain: list[Json]) -> None:
    trace = chain[0]
    dismissed = trace["input"]["selection_input"]["dismissed"]
    trace["input"]["selection_input"]["dismissed"] = [*dismissed, trace["catalog"]["item_id"]]
    result = replay(trace)
    assert not result.matches
    assert any("no longer selected" in d for d in result.differences)


def test_replay_detects_a_changed_eligibility_outcome(real_users: Json) -> None:
    trace = next(
        t
        for t in traces_for(real_users["users"]["high_utilization"][1])
        if t["catalog"]["item_id"] == "offer-balance-transfer-card"
    )
    trace["input"]["selection_input"]["user"]["annual_income"] = 1000.0
    assert not replay(trace).matches


def test_replay_detects_an_edited_stored_text(chain: list[Json]) -> None:
    chain[0]["output"]["rationale"] = chain[0]["output"]["rationale"].replace("ending", "that ends")
    result = replay(chain[0])
    assert not result.matches
    assert result.differences == ["template rationale differs from the stored text"]


def test_replay_detects_edited_alternatives_or_recorded_facts(chain: list[Json]) -> None:
    trace = next(t for t in chain if t["alternatives"])
    alternatives = copy.deepcopy(trace)
    alternatives["alternatives"][0]["rationale"] += " Unchecked."
    assert replay(alternatives).differences == ["the alternatives differ"]
    dropped = copy.deepcopy(trace)
    dropped["alternatives"] = dropped["alternatives"][1:]
    assert replay(dropped).differences == ["the alternatives differ"]
    facts = copy.deepcopy(trace)
    facts["citable"]["facts"][0]["display"] = "$9,999"
    assert replay(facts).differences == ["the facts the text was checked against differ"]


def test_a_trace_from_before_facts_and_alternatives_were_recorded_still_replays(chain: list[Json]) -> None:
    older = {k: v for k, v in chain[0].items() if k not in ("citable", "alternatives")}
    assert replay(older).matches


def test_replay_detects_a_catalog_changed_without_a_new_version(chain: list[Json], catalog: Catalog) -> None:
    data = catalog.model_dump()
    data["education"][0]["title"] = "A retitled article"
    edited = parse_catalog(data)
    result = replay(chain[0], catalogs=lambda version: edited)
    assert not result.matches
    assert "content changed" in result.differences[0]


def test_replay_reports_an_unknown_selection_or_catalog_version(chain: list[Json]) -> None:
    old = copy.deepcopy(chain[0])
    old["input"]["selection_input"]["selection_version"] = "selection-v0"
    assert "selection version" in replay(old).differences[0]
    gone = copy.deepcopy(chain[0])
    gone["input"]["selection_input"]["catalog_version"] = "catalog-v404"
    assert "unavailable" in replay(gone).differences[0]


def test_replay_rechecks_model_text_with_the_guardrails(chain: list[Json]) -> None:
    trace = chain[0]
    trace["generator"] = {"used": "llm", "model": "m"}
    assert replay(trace).matches  # the stored (template) text passes the guardrails
    trace["output"]["rationale"] = "You're overspending by $12,345 on your cards, which is a lot."
    result = replay(trace)
    assert not result.matches
    assert "tone" in result.differences[0]
    assert "grounding" in result.differences[0]


def test_catalogs_are_loaded_once_per_version() -> None:
    assert load_catalog("catalog-v1") is load_catalog()
