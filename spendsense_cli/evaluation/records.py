"""From what the pipeline produced (analysis signals, decision traces, review states) to the evaluation's
per-user records (:mod:`spendsense_cli.evaluation.metrics`). Shared by both sources, so a metric means
the same whether it was computed offline or read from the stack.

Traces are checked with the recommender's own domain code: ``verify_chain`` (the hash chain) and
``replay`` (the decision recomputed from the stored inputs and versions).
"""

from __future__ import annotations

import importlib
import math
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

from spendsense_cli.evaluation.metrics import DISTRIBUTION_SIGNALS, ELIGIBILITY_RULES_NOT_REFUSALS, RecOutcome
from spendsense_recommender.domain import ReplayResult, replay, verify_chain

Json = dict[str, Any]

# A behaviour is detected when its signal is present in the 180-day window (docs/evaluation.md).
BEHAVIOURS: dict[str, Callable[[Json], bool]] = {
    "recurring_payments": lambda s: (_num(s, "subscriptions.recurring_merchant_count") or 0) >= 1,
    "credit_card_use": lambda s: (_num(s, "credit.card_count") or 0) >= 1,
    "credit_strain": lambda s: bool(
        _get(s, "credit.flag_30")
        or (_num(s, "credit.interest_charges") or 0) > 0
        or _get(s, "credit.minimum_payment_only")
        or _get(s, "credit.overdue")
    ),
    "savings_activity": lambda s: (
        (_num(s, "savings.balance") or 0) > 0 or (_num(s, "savings.net_inflow") or 0) != 0
    ),
    "regular_income": lambda s: _num(s, "income.median_pay_gap_days") is not None,
    "fees": lambda s: (_num(s, "cash_flow.overdraft_fee_count") or 0) >= 1,
}
# What a complete trace holds (SPEC §6): path → must be present and not empty (None: may be empty).
TRACE_REQUIRED: tuple[str, ...] = (
    "input.as_of",
    "input.selection_input",
    "persona.rule_set_version",
    "persona.primary",
    "signals_used",
    "catalog.item_id",
    "catalog.version",
    "catalog.content_hash",
    "output.rationale",
    "output.disclosure",
    "guardrails.tone",
    "guardrails.grounding",
    "generator.used",
    "chain.hash",
)
NOT_THE_USERS_FIGURES = ("guide.", "offer.")  # general guidance and product terms


def _get(tree: Mapping[str, Any], path: str) -> Any:
    node: Any = tree
    for part in path.split("."):
        if not isinstance(node, Mapping) or part not in node:
            return None
        node = node[part]
    return node


def _num(tree: Mapping[str, Any], path: str) -> float | None:
    value = _get(tree, path)
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        return None
    return float(value)


def behaviours(signals: Mapping[str, Any]) -> list[str]:
    """The behaviours detected in one window's signals (the analysis report's ``signals``)."""
    return [name for name, detected in BEHAVIOURS.items() if detected(dict(signals))]


def distribution_values(signals: Mapping[str, Any]) -> dict[str, float | None]:
    return {name: _num(signals, name) for name in DISTRIBUTION_SIGNALS}


def explained(trace: Mapping[str, Any]) -> bool:
    """The rationale cites at least one of the user's own figures: a fact of the user's data (not a
    general guide value or an offer's terms) that the text was checked against appears in it."""
    rationale = str(_get(trace, "output.rationale") or "")
    facts = _get(trace, "citable.facts") or []
    own = [f for f in facts if not str(f.get("key", "")).startswith(NOT_THE_USERS_FIGURES)]
    return bool(rationale.strip()) and any(
        str(f.get("display", "")) in rationale for f in own if f.get("display")
    )


def trace_complete(trace: Mapping[str, Any], status: str | None) -> bool:
    """Every part SPEC §6 names is there; offers also carry their eligibility checks; a reviewed item
    carries the operator's action."""
    for path in TRACE_REQUIRED:
        value = _get(trace, path)
        if value is None or value == "" or value == {}:
            return False
    if _get(trace, "catalog.kind") == "offer" and not trace.get("eligibility"):
        return False
    return not (status in ("approved", "rejected", "overridden") and not trace.get("operator_actions"))


def _fit(trace: Mapping[str, Any]) -> tuple[bool, bool]:
    reasons = [str(r) for r in _get(trace, "selection.reasons") or []]
    primary = f"persona:{_get(trace, 'persona.primary')}"
    return primary in reasons, any(r.startswith(("persona:", "signal:")) for r in reasons)


@contextmanager
def decisions_shared_between_replays() -> Iterator[None]:
    """While in this block, replaying a user's traces decides once per distinct input.

    Every trace of one generation stores the same selection input, and ``replay`` recomputes the whole
    decision for each (``selection.decide``: every catalog item's templates through the guardrails), so
    most of an evaluation's time would go to computing the same decision eight times. ``decide`` is pure
    (same input, same decision: SPEC §6 replayability rests on it), so its result is kept, keyed by the
    input's canonical JSON and the catalog's content hash, for the few most recent inputs. Only the name
    the replay module calls is wrapped, and only for the block; the recorded traces are not touched."""
    # The package exports a function named ``replay``, which hides the module of that name as an attribute.
    replay_module = importlib.import_module("spendsense_recommender.domain.replay")

    original = replay_module.decide  # the name replay() calls
    cache: dict[tuple[str, str], Any] = {}
    lock = threading.Lock()

    def decide(inputs: Any, catalog: Any) -> Any:
        key = (inputs.model_dump_json(), catalog.content_hash)
        with lock:
            if key in cache:
                return cache[key]
        decision = original(inputs, catalog)
        with lock:
            if len(cache) >= 64:
                cache.clear()
            cache[key] = decision
        return decision

    setattr(replay_module, "decide", decide)  # noqa: B010 (a module attribute, swapped for the block)
    try:
        yield
    finally:
        setattr(replay_module, "decide", original)  # noqa: B010


def replayed(trace: Mapping[str, Any]) -> ReplayResult:
    """The decision recomputed from the trace's own inputs and versions (the recommender's ``replay``)."""
    return replay(trace)


def rec_outcome(
    trace: Mapping[str, Any],
    *,
    chain_ok: bool,
    status: str | None = None,
    replay_result: ReplayResult | None = None,
) -> RecOutcome:
    """One recommendation's record; ``chain_ok``: its user's chain verified; ``replay_result``: the trace
    replayed already (else it is replayed here)."""
    result = replay_result if replay_result is not None else replay(trace)
    primary_fit, any_fit = _fit(trace)
    guardrails = trace.get("guardrails") or {}
    generator = trace.get("generator") or {}
    return RecOutcome(
        recommendation_id=str(trace.get("recommendation_id")),
        kind=str(_get(trace, "catalog.kind")),
        item_id=str(_get(trace, "catalog.item_id")),
        primary_fit=primary_fit,
        any_fit=any_fit,
        explained=explained(trace),
        trace_complete=trace_complete(trace, status),
        trace_verified=chain_ok and result.matches,
        tone_passed=bool(_get(guardrails, "tone.passed")),
        grounding_passed=bool(_get(guardrails, "grounding.passed")),
        fell_back=generator.get("fallback") is not None,
        generator=str(generator.get("used", "unknown")),
        status=status,
    )


def chain_verified(traces: Sequence[Mapping[str, Any]]) -> bool:
    return verify_chain(traces, traces[0]["chain"]["previous_hash"] if traces else None).ok


def refusals(rejected_offers: Sequence[Mapping[str, Any]]) -> list[str]:
    """Per refused offer, its failed eligibility rules, "+"-joined (an offer that only did not fit the user
    is not a refusal)."""
    failed: list[str] = []
    for offer in rejected_offers:
        rules = [
            str(c["rule"])
            for c in offer.get("checks", [])
            if not c.get("passed") and c.get("rule") not in ELIGIBILITY_RULES_NOT_REFUSALS
        ]
        if rules:
            failed.append("+".join(rules))
    return failed
