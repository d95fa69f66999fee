"""A reviewer's decision on one recommendation (an operator's, or an auto-approval policy's): what the
user sees after it, and the entry it chains onto the item's decision trace. Pure.

    outcome = decide_review(target, review, consented=..., at=now)   # None: this event was applied already
    outcome.status, outcome.shown, outcome.trace, outcome.became_visible

Statuses: ``pending_review`` → ``approved`` or ``overridden`` (visible to the user), ``rejected``,
``flagged`` or ``override_refused`` (hidden).

* **approved**: visible with its text. An item already visible stays as it is (an overridden one keeps
  its override text): the approval is recorded, nothing else changes.
* **overridden**: before anything is shown, the override is checked again here (defence in depth: the
  operator checked it too) against what the trace recorded for the catalog item it names — this item
  (its ``citable`` facts and trusted names) or one of its recorded ``alternatives`` (theirs), in the
  same catalog version. Title, rationale and disclosure must pass ``check_text``; a body other than that
  catalog item's own must pass the tone check (catalog bodies cite the product's own terms, so an edited
  body is not held to the user's facts). Passed: the override text is stored in
  place of the item's (the generated text stays in the sealed trace) and shown, status ``overridden``.
  Failed: the item is hidden, status ``override_refused`` — neither the refused text nor the text the
  operator meant to replace is shown — and the trace records why (the guardrail report). A later review
  (an approval, a valid override) can still publish it.
* **rejected**, **flagged**: hidden.
* **No current consent**: nothing becomes visible. An approval or an override is recorded as not applied
  (``outcome: not_applied``, status unchanged); a rejection or a flag still hides the item.
* **Once per event**: the event id is recorded with the action, and an event the trace already records
  changes nothing (``None``). A different decision on an item is always recorded (``outcome: unchanged``
  when it changes nothing, e.g. a second approval). Only a change from hidden to visible is to be
  announced (``became_visible``): approving an item already visible, or overriding a visible one,
  announces nothing again.

Every entry: ``at``, ``event_id``, ``actor``, ``action``, ``reason``, ``policy`` (when a policy decided),
``outcome`` (applied | unchanged | refused | not_applied), ``status`` before and after; an override adds
its ``source``, the text ``before`` and ``after`` and the ``guardrails`` report of the check.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal, cast

from spendsense_shared.guardrails.checks import check_text
from spendsense_shared.guardrails.facts import citable, from_citable
from spendsense_shared.guardrails.tone import check_tone
from spendsense_shared.messaging.contracts import CitableFact

from .alternatives import item_details
from .catalog import Catalog, EducationItem, Offer, load_catalog
from .facts import build_facts, placeholders
from .model import ReviewTarget, ShownText
from .selection import SelectionInput, item_facts
from .trace import append_operator_action

__all__ = [
    "OVERRIDE_REFUSED",
    "VISIBLE",
    "Override",
    "Review",
    "ReviewOutcome",
    "check_override",
    "decide_review",
    "recorded_citable",
]

Decision = Literal["approved", "rejected", "overridden", "flagged"]
Outcome = Literal["applied", "unchanged", "refused", "not_applied"]
VISIBLE = frozenset({"approved", "overridden"})
OVERRIDE_REFUSED = "override_refused"


@dataclass(frozen=True)
class Override:
    """The text a reviewer put in the item's place: edited, or one of its alternatives."""

    source: Literal["edited", "catalog_item"]
    catalog_item_id: str
    catalog_version: str
    title: str
    body: str
    rationale: str
    disclosure: str

    def to_dict(self) -> dict[str, Any]:
        return {
            "catalog_item_id": self.catalog_item_id,
            "catalog_version": self.catalog_version,
            "title": self.title,
            "body": self.body,
            "rationale": self.rationale,
            "disclosure": self.disclosure,
        }


@dataclass(frozen=True)
class Review:
    event_id: str
    decision: Decision
    actor: str  # the operator id, or policy:<name>
    reason: str | None = None
    policy: str | None = None
    override: Override | None = None
    decided_at: datetime | None = None


@dataclass(frozen=True)
class ReviewOutcome:
    status: str
    outcome: Outcome
    trace: dict[str, Any]  # the trace with the decision chained on
    shown: ShownText | None  # an accepted override: the text to show instead
    became_visible: bool  # hidden before, visible now: announce it

    @property
    def action(self) -> dict[str, Any]:
        return dict(self.trace["operator_actions"][-1])


def recorded_citable(
    trace: Mapping[str, Any], catalogs: Callable[[str], Catalog] = load_catalog
) -> dict[str, Any] | None:
    """What the guardrail check of the trace's text was given (``{"facts", "trusted_names"}``): as the
    trace recorded it, or — a trace from before it was recorded — recomputed from the trace's own inputs
    as replay does; None when that is not possible."""
    if "citable" in trace:
        return dict(trace["citable"])
    try:
        inputs = SelectionInput.model_validate(trace["input"]["selection_input"])
        item = catalogs(inputs.catalog_version).item(trace["catalog"]["item_id"])
        template = item.rationale[trace["selection"]["template_index"]].text
    except (KeyError, IndexError, TypeError, ValueError, OSError):
        return None
    facts = item_facts(item, build_facts(inputs.snapshot)).subset(placeholders(template))
    return {"facts": [f.model_dump(mode="json") for f in citable(facts)], "trusted_names": [item.title]}


def _catalog_item(
    item_id: str, version: str, catalogs: Callable[[str], Catalog]
) -> EducationItem | Offer | None:
    try:
        return catalogs(version).item(item_id)
    except (KeyError, ValueError, OSError):
        return None


def check_override(
    trace: Mapping[str, Any], override: Override, catalogs: Callable[[str], Catalog] = load_catalog
) -> tuple[dict[str, Any], dict[str, Any] | None]:
    """The check of an override against what the trace recorded for the catalog item it names: the
    report (``passed``, ``reasons``, and the details of each check) and that catalog item's details
    (format, partner, product type, url) to show with it (None when unknown)."""
    catalog = trace.get("catalog") or {}
    alternatives = {a["catalog_item_id"]: a for a in trace.get("alternatives") or []}
    details: dict[str, Any] | None = None
    body: str | None = None
    if override.catalog_item_id == catalog.get("item_id"):
        recorded, version = recorded_citable(trace, catalogs), str(catalog.get("version"))
        item = _catalog_item(override.catalog_item_id, version, catalogs)
        if item is not None:
            body, details = item.body, item_details(item)
    elif override.catalog_item_id in alternatives:
        alternative = alternatives[override.catalog_item_id]
        recorded, version = alternative.get("citable"), str(alternative["catalog_version"])
        body, details = alternative["body"], dict(alternative["details"])
    else:
        reason = f"catalog_item: {override.catalog_item_id} is neither this item nor one of its alternatives"
        return {"passed": False, "reasons": [reason]}, None
    if override.catalog_version != version:
        reason = f"catalog_version: {override.catalog_version} is not the recorded {version}"
        return {"passed": False, "reasons": [reason]}, None
    if recorded is None:
        return {"passed": False, "reasons": ["citable: no facts recorded to check the text against"]}, None
    facts = from_citable(CitableFact.model_validate(f) for f in recorded["facts"])
    trusted = tuple(recorded["trusted_names"])
    own_text = "\n".join((*trusted, body or ""))  # links and number words the item itself has
    text = check_text(override.title, override.rationale, override.disclosure, facts, trusted, own_text)
    report = {**text.to_dict(), "checked_against": override.catalog_item_id}
    reasons = list(text.reasons)
    if override.body != body:  # an edited body: tone-checked (the rationale carries the user's figures)
        tone = check_tone(override.body)
        report["body"] = {"edited": True, "tone": tone.to_dict()}
        reasons += [] if tone.passed else ["body_tone"]
    report["passed"], report["reasons"] = not reasons, reasons
    return report, details


def _already_applied(trace: Mapping[str, Any], event_id: str) -> bool:
    return any(a.get("event_id") == event_id for a in trace.get("operator_actions") or [])


def decide_review(
    target: ReviewTarget,
    review: Review,
    *,
    consented: bool,
    at: datetime,
    catalogs: Callable[[str], Catalog] = load_catalog,
) -> ReviewOutcome | None:
    """The outcome of ``review`` on ``target`` (see the module docstring); None when the trace already
    records this event."""
    if _already_applied(target.trace, review.event_id):
        return None
    before = target.status
    status, outcome = before, cast(Outcome, "applied")
    shown: ShownText | None = None
    entry: dict[str, Any] = {
        "at": at.isoformat(),
        "event_id": review.event_id,
        "actor": review.actor,
        "action": review.decision,
        "reason": review.reason,
    }
    if review.policy is not None:
        entry["policy"] = review.policy
    if review.decided_at is not None:
        entry["decided_at"] = review.decided_at.isoformat()
    if review.override is not None:
        entry["override"] = {
            "source": review.override.source,
            "before": target.shown.to_dict(),
            "after": review.override.to_dict(),
        }
    if review.decision in ("rejected", "flagged"):
        status = review.decision
    elif not consented:
        outcome, entry["not_applied"] = "not_applied", "consent_required"
    elif review.decision == "approved":
        status = before if before in VISIBLE else "approved"
    else:
        assert review.override is not None, "an overridden decision carries its override"
        report, details = check_override(target.trace, review.override, catalogs)
        entry["override"]["guardrails"] = report
        if report["passed"]:
            status = "overridden"
            shown = ShownText(
                **review.override.to_dict(), details=details if details is not None else target.shown.details
            )
        else:
            status, outcome = OVERRIDE_REFUSED, "refused"
    if outcome == "applied" and status == before and shown in (None, target.shown):
        outcome = "unchanged"
    entry["outcome"] = outcome
    entry["status"] = {"before": before, "after": status}
    return ReviewOutcome(
        status=status,
        outcome=outcome,
        trace=append_operator_action(target.trace, entry),
        shown=shown,
        became_visible=status in VISIBLE and before not in VISIBLE,
    )
