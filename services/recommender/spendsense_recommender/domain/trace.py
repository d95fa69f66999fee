"""Decision traces: what they hold, and tamper evidence (SPEC §6).

A trace is a JSON-ready dict (see ``build_trace``). Tamper evidence is a hash chain per user:

    content_hash = sha256(canonical JSON of the trace without "chain" and "operator_actions")
    hash         = sha256(previous_hash + ":" + content_hash)      previous_hash of the first = GENESIS

and ``chain = {"previous_hash", "content_hash", "hash"}`` is stored in the trace. Editing any field
changes its content hash; removing, inserting or reordering traces breaks a ``previous_hash`` link.
``verify_chain`` walks a user's traces in order and reports the first broken link.

When two accounts are merged, the merged-away account's traces become the remaining account's but stay
in the chain they were sealed in (rewriting their hashes would defeat the tamper evidence): a user's
traces are then several chains, each identified by the id of the user it was sealed for, and
``verify_chains`` verifies each on its own. New traces continue the user's own chain.

Operator actions come later (review, override, …) and must not break the seal of the decision, so
they live in their own slot, each action chained to the trace's hash and to the action before it
(``append_operator_action``); the verifier checks that sub-chain too.

Canonical JSON: keys sorted, no whitespace, UTF-8, no NaN, and numbers as PostgreSQL JSONB gives them
back: JSONB stores numbers as ``numeric``, so ``-0.0`` comes back ``0.0`` and a float Python writes with a
positive exponent (``5.2e+16``, from 1e16 up) comes back as the integer of its decimal digits. Both
are written that way before hashing, so a trace hashes the same before and after a round trip through
JSONB (which also reorders keys: the order is re-imposed when hashing).
"""

from __future__ import annotations

import copy
import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from decimal import Decimal
from typing import Any

from .catalog import Catalog, EducationItem, Offer
from .selection import Pick, SelectionDecision, SelectionInput
from .vocabulary import TRACE_SCHEMA
from .writer import WrittenText

__all__ = [
    "GENESIS",
    "ChainVerification",
    "ChainsVerification",
    "append_operator_action",
    "build_trace",
    "canonical_json",
    "content_hash",
    "seal",
    "seal_chain",
    "verify_chain",
    "verify_chains",
]

GENESIS = "0" * 64
_UNSEALED = ("chain", "operator_actions")


def canonical_json(value: Any) -> bytes:
    # Most values have nothing JSONB would write differently: encoded as they are, they read neither
    # "-0.0" nor "e+" (every float from 1e16 up is written with "e+", and -0.0 as "-0.0"), and then
    # they encode exactly as their JSONB form does, without walking them first. A value whose encoding
    # reads either (even inside a string), or that json cannot encode as it is (a Mapping it does not
    # know, a value it refuses), takes the walk: the result, or the error, it always gave.
    try:
        text = _dumps(value)
    except (TypeError, ValueError):
        text = None
    if text is None or "-0.0" in text or "e+" in text:
        text = _dumps(_as_jsonb_returns(value))
    return text.encode()


def _dumps(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


_EXPONENT_FROM = 1e16  # from here on Python writes every float with a positive exponent ("5.2e+16")


def _as_jsonb_returns(value: Any) -> Any:
    kind = type(value)  # the common types first, without the slower isinstance checks below
    if kind is str or kind is int or kind is bool or value is None:
        return value
    if kind is dict:
        return {key: _as_jsonb_returns(item) for key, item in value.items()}
    if kind is list:
        return [_as_jsonb_returns(item) for item in value]
    if isinstance(value, float):
        if value == 0.0:
            return 0.0  # -0.0 too
        if abs(value) >= _EXPONENT_FROM:  # JSONB writes its decimal digits out: an integer
            return int(Decimal(repr(value)))
        return value
    if isinstance(value, Mapping):
        return {key: _as_jsonb_returns(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_as_jsonb_returns(item) for item in value]
    return value


def _sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def content_hash(trace: Mapping[str, Any]) -> str:
    return _sha256(canonical_json({k: v for k, v in trace.items() if k not in _UNSEALED}))


def _link(previous_hash: str, content: str) -> str:
    return _sha256(f"{previous_hash}:{content}".encode())


def seal(trace: Mapping[str, Any], previous_hash: str | None) -> dict[str, Any]:
    """A copy of the trace with its chain fields, linked to the user's previous trace hash."""
    previous = previous_hash or GENESIS
    content = content_hash(trace)
    sealed = dict(trace)
    sealed["chain"] = {"previous_hash": previous, "content_hash": content, "hash": _link(previous, content)}
    return sealed


def seal_chain(traces: Sequence[Mapping[str, Any]], previous_hash: str | None) -> list[dict[str, Any]]:
    sealed: list[dict[str, Any]] = []
    for trace in traces:
        sealed.append(seal(trace, previous_hash))
        previous_hash = sealed[-1]["chain"]["hash"]
    return sealed


def _action_hash(action: Mapping[str, Any]) -> str:
    return _sha256(canonical_json({k: v for k, v in action.items() if k != "hash"}))


def append_operator_action(trace: Mapping[str, Any], action: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of a sealed trace with ``action`` chained on (e.g. operator_id, action, at, reason)."""
    updated = copy.deepcopy(dict(trace))
    actions = updated.setdefault("operator_actions", [])
    previous = actions[-1]["hash"] if actions else updated["chain"]["hash"]
    entry = {**dict(action), "previous_hash": previous}
    entry["hash"] = _action_hash(entry)
    actions.append(entry)
    return updated


@dataclass(frozen=True)
class ChainVerification:
    ok: bool
    checked: int
    broken_at: int | None = None  # index in the sequence given
    trace_id: str | None = None
    reason: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "checked": self.checked,
            "broken_at": self.broken_at,
            "trace_id": self.trace_id,
            "reason": self.reason,
        }


def _trace_problem(trace: Mapping[str, Any], expected_previous: str) -> str | None:
    chain = trace.get("chain")
    if not isinstance(chain, Mapping):
        return "trace is not sealed (no chain)"
    if chain.get("previous_hash") != expected_previous:
        return "previous_hash does not match the preceding trace (a trace was removed, inserted or reordered)"
    if content_hash(trace) != chain.get("content_hash"):
        return "content_hash does not match the content (the trace was edited)"
    if _link(expected_previous, str(chain.get("content_hash"))) != chain.get("hash"):
        return "hash does not match previous_hash and content_hash"
    return _actions_problem(trace, str(chain.get("hash")))


def _actions_problem(trace: Mapping[str, Any], trace_hash: str) -> str | None:
    previous = trace_hash
    for index, action in enumerate(trace.get("operator_actions") or []):
        if action.get("previous_hash") != previous or _action_hash(action) != action.get("hash"):
            return f"operator_actions[{index}] was edited, removed or reordered"
        previous = action["hash"]
    return None


def verify_chain(traces: Sequence[Mapping[str, Any]], previous_hash: str | None = None) -> ChainVerification:
    """Walks ``traces`` (one user's, oldest first) and reports the first broken link. ``previous_hash``:
    the hash before the first trace given (GENESIS when the sequence starts the chain)."""
    expected = previous_hash or GENESIS
    for index, trace in enumerate(traces):
        problem = _trace_problem(trace, expected)
        if problem:
            return ChainVerification(False, index, index, trace.get("recommendation_id"), problem)
        expected = trace["chain"]["hash"]
    return ChainVerification(True, len(traces))


@dataclass(frozen=True)
class ChainsVerification:
    """The verification of every chain of a user's traces (chain id → its verification, in order)."""

    chains: tuple[tuple[str, ChainVerification], ...]

    @property
    def ok(self) -> bool:
        return all(v.ok for _, v in self.chains)

    def to_dict(self) -> dict[str, Any]:
        """The report: ``ok`` and ``checked`` over every chain, the first break (``chain_id``, and
        ``broken_at`` as an index in that chain), and each chain's own verification in ``chains``."""
        broken = next(((chain_id, v) for chain_id, v in self.chains if not v.ok), None)
        return {
            "ok": self.ok,
            "checked": sum(v.checked for _, v in self.chains),
            "chain_id": broken[0] if broken else None,
            "broken_at": broken[1].broken_at if broken else None,
            "trace_id": broken[1].trace_id if broken else None,
            "reason": broken[1].reason if broken else None,
            "chains": [{"chain_id": chain_id, **v.to_dict()} for chain_id, v in self.chains],
        }


def verify_chains(chains: Mapping[str, Sequence[Mapping[str, Any]]]) -> ChainsVerification:
    """Verifies each chain (chain id → its traces, oldest first) from its start."""
    return ChainsVerification(tuple((chain_id, verify_chain(traces)) for chain_id, traces in chains.items()))


def build_trace(
    *,
    recommendation_id: str,
    upload_id: str | None,
    as_of: date | None,
    rule_set_version: str,
    inputs: SelectionInput,
    decision: SelectionDecision,
    pick: Pick,
    item: EducationItem | Offer,
    catalog: Catalog,
    facts_used: Mapping[str, Any],
    written: WrittenText,
    citable: Mapping[str, Any],
    alternatives: Sequence[Mapping[str, Any]],
) -> dict[str, Any]:
    """The unsealed trace of one recommendation (``seal``/``seal_chain`` add the chain). ``citable``: what
    the text's guardrail check was given; ``alternatives``: what an operator may put in its place
    (both from :mod:`spendsense_recommender.domain.alternatives`)."""
    snapshot = inputs.snapshot
    return {
        "schema": TRACE_SCHEMA,
        "recommendation_id": recommendation_id,
        "user_id": snapshot.user_id,
        "input": {
            "upload_id": upload_id,
            "as_of": as_of.isoformat() if as_of else None,
            "selection_input": inputs.model_dump(mode="json", by_alias=True),
        },
        "persona": {
            "rule_set_version": rule_set_version,
            **decision.persona,
            "criteria_fired": snapshot.criteria_fired,
        },
        "signals_used": {"tags": pick.signals, "facts": dict(facts_used)},
        "catalog": {
            "version": catalog.version,
            "content_hash": catalog.content_hash,
            "item_id": item.id,
            "kind": item.kind,
        },
        "selection": {
            "version": decision.selection_version,
            "rank": pick.rank,
            "score": pick.score,
            "reasons": pick.reasons,
            "template_index": pick.template_index,
            "selected": {
                "education": [p.item_id for p in decision.education],
                "offers": [p.item_id for p in decision.offers],
            },
        },
        "eligibility": [c.model_dump(mode="json") for c in pick.checks],
        "output": {"title": written.title, "rationale": written.rationale, "disclosure": written.disclosure},
        "guardrails": written.guardrails,
        "citable": dict(citable),
        "generator": written.generator,
        "alternatives": [dict(a) for a in alternatives],
        "operator_actions": [],
    }
