"""Replay: recompute a stored decision from the trace's own inputs and versions (SPEC §6).

The trace stores the whole ``SelectionInput`` (report snapshot, user facts, dismissed ids, catalog and
selection versions). ``replay`` loads that catalog version, checks it is byte-for-byte the content the
decision was made from (content hash), re-runs ``decide`` and compares the item's pick (rank, score,
template, eligibility checks) and the whole selection. For template text it also re-renders the
rationale and compares; for model text it re-runs the guardrails on the stored text. When the trace
records them (``trace-v2``), it also recomputes the facts the text was checked against and the item's
alternatives, and compares.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from pydantic import BaseModel, ConfigDict

from spendsense_shared.guardrails.checks import check_text

from .alternatives import alternatives_for, citable_record, write_request
from .catalog import Catalog, load_catalog
from .facts import build_facts, placeholders, render_template
from .selection import SelectionDecision, SelectionInput, decide, item_facts
from .vocabulary import SELECTION_VERSION
from .writer import catalog_text

__all__ = ["ReplayResult", "replay"]


class ReplayResult(BaseModel):
    model_config = ConfigDict(frozen=True)

    matches: bool
    differences: list[str]
    decision: SelectionDecision | None = None


def _pick_differences(trace: Mapping[str, Any], decision: SelectionDecision) -> list[str]:
    item_id = trace["catalog"]["item_id"]
    stored = trace["selection"]
    differences = []
    recomputed = {
        "education": [p.item_id for p in decision.education],
        "offers": [p.item_id for p in decision.offers],
    }
    if recomputed != stored["selected"]:
        differences.append(f"selection: stored {stored['selected']}, recomputed {recomputed}")
    pick = decision.pick(item_id)
    if pick is None:
        return [*differences, f"{item_id} is no longer selected"]
    for name, value in (("rank", pick.rank), ("score", pick.score), ("template_index", pick.template_index)):
        if stored[name] != value:
            differences.append(f"{name}: stored {stored[name]}, recomputed {value}")
    checks = [c.model_dump(mode="json") for c in pick.checks]
    if checks != trace["eligibility"]:
        differences.append("eligibility checks differ")
    return differences


def _text_differences(trace: Mapping[str, Any], inputs: SelectionInput, catalog: Catalog) -> list[str]:
    item = catalog.item(trace["catalog"]["item_id"])
    template = item.rationale[trace["selection"]["template_index"]].text
    facts = item_facts(item, build_facts(inputs.snapshot)).subset(placeholders(template))
    output = trace["output"]
    if trace["generator"].get("used") == "template":
        expected = render_template(template, facts)
        return [] if expected == output["rationale"] else ["template rationale differs from the stored text"]
    own_text = catalog_text(item.title, item.body, template)
    report = check_text(
        output["title"], output["rationale"], output["disclosure"], facts, (item.title,), own_text
    )
    return [] if report.passed else [f"stored model text now fails: {', '.join(report.reasons)}"]


def _record_differences(
    trace: Mapping[str, Any], inputs: SelectionInput, catalog: Catalog, decision: SelectionDecision
) -> list[str]:
    item_id = trace["catalog"]["item_id"]
    pick = decision.pick(item_id)
    assert pick is not None  # _pick_differences found it
    facts = build_facts(inputs.snapshot)
    persona = inputs.snapshot.primary_persona
    differences = []
    if "citable" in trace:
        request = write_request(catalog.item(item_id), pick, facts, persona, catalog)
        if citable_record(request) != trace["citable"]:
            differences.append("the facts the text was checked against differ")
    recorded = trace.get("alternatives")
    if recorded is not None and alternatives_for(decision, catalog, facts, persona)[item_id] != recorded:
        differences.append("the alternatives differ")
    return differences


def replay(trace: Mapping[str, Any], catalogs: Callable[[str], Catalog] = load_catalog) -> ReplayResult:
    """Recomputes the decision recorded in ``trace`` and says whether it matches."""
    inputs = SelectionInput.model_validate(trace["input"]["selection_input"])
    if inputs.selection_version != SELECTION_VERSION:
        return ReplayResult(
            matches=False,
            differences=[
                f"selection version {inputs.selection_version} is not this code's {SELECTION_VERSION}"
            ],
        )
    try:
        catalog = catalogs(inputs.catalog_version)
    except (OSError, ValueError) as error:
        return ReplayResult(
            matches=False, differences=[f"catalog {inputs.catalog_version} unavailable: {error}"]
        )
    if catalog.content_hash != trace["catalog"]["content_hash"]:
        return ReplayResult(
            matches=False, differences=[f"catalog {catalog.version} content changed since the decision"]
        )
    decision = decide(inputs, catalog)
    differences = _pick_differences(trace, decision)
    if not differences:
        differences = _text_differences(trace, inputs, catalog)
        differences += _record_differences(trace, inputs, catalog, decision)
    return ReplayResult(matches=not differences, differences=differences, decision=decision)
