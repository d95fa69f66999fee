"""An operator's override of a recommendation (SPEC §7, "override: edit text, still tone- and
grounding-checked"): what may replace an item's text and the checks the replacement must pass. Pure.

Two ways to override:

* **edited text** (``source`` edited): the operator writes the title, body and rationale; the disclosure
  is always the standard :data:`~spendsense_shared.guardrails.DISCLOSURE` and the item keeps its catalog
  item and version. The title and rationale go through the shared guardrails exactly as the recommender
  runs them on generated text (:func:`spendsense_shared.guardrails.check_text` against the item's stored
  facts and trusted names: tone, grounding, disclosure, length). The body — static catalog content on the
  recommender's side, where it is tone-checked when the catalog loads — is free text here, so it gets the
  same tone check, a length check (the catalog's limits, 20 to 2,000 characters) and a grounding check:
  every figure in it must match one of the item's facts or be a figure the item's original (catalog)
  body already states ("12-month", "$500"), so keeping the catalog's wording never fails and a new
  figure must be the user's own.
* **another catalog item** (``source`` catalog_item): one of the item's ``alternatives``, which the
  recommender wrote for this user and ran through every guardrail against that item's own facts (an
  offer's terms are facts of that offer only, so they cannot be re-grounded against this item's facts).
  The operator runs again what needs no facts — tone on the title, body and rationale, the disclosure and
  the lengths — and reports grounding as checked by the recommender.

Either way the result is one report with the four checks (``tone``, ``grounding``, ``disclosure``,
``length``); the override is refused unless every one passed.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from spendsense_operator.domain.model import QueuedItem
from spendsense_shared.guardrails import (
    DISCLOSURE,
    RATIONALE_MAX,
    RATIONALE_MIN,
    TITLE_MAX,
    TITLE_MIN,
    check_grounding,
    check_text,
    check_tone,
    from_citable,
)
from spendsense_shared.guardrails.grounding import Claim, extract_claims
from spendsense_shared.messaging.catalog import OverrideText
from spendsense_shared.messaging.contracts import Alternative

BODY_MIN, BODY_MAX = 20, 2000  # the catalog's limits for an item's body
CATALOG_BODY = "catalog_body"  # what a body figure matched when the original catalog body states it
CHECKS = ("tone", "grounding", "disclosure", "length")

Source = Literal["edited", "catalog_item"]


@dataclass(frozen=True)
class EditedText:
    title: str
    body: str
    rationale: str


@dataclass(frozen=True)
class OverrideReport:
    """The four checks on a replacement text, each over every field it covers."""

    source: Source
    tone_hits: list[dict[str, str]]  # each {"field", "rule", "match"}
    claims: list[dict[str, Any]] | None  # each {"field", "text", "unit", "value", "fact"}; None: not re-run
    disclosure_ok: bool
    lengths: dict[str, int]
    limits: dict[str, tuple[int, int]] = field(
        default_factory=lambda: {
            "title": (TITLE_MIN, TITLE_MAX),
            "rationale": (RATIONALE_MIN, RATIONALE_MAX),
            "body": (BODY_MIN, BODY_MAX),
        }
    )

    @property
    def length_ok(self) -> bool:
        return all(low <= self.lengths[name] <= high for name, (low, high) in self.limits.items())

    @property
    def grounding_ok(self) -> bool:
        return self.claims is None or all(c["fact"] is not None for c in self.claims)

    @property
    def results(self) -> dict[str, bool]:
        return {
            "tone": not self.tone_hits,
            "grounding": self.grounding_ok,
            "disclosure": self.disclosure_ok,
            "length": self.length_ok,
        }

    @property
    def passed(self) -> bool:
        return all(self.results.values())

    @property
    def reasons(self) -> list[str]:
        return [name for name, ok in self.results.items() if not ok]

    def to_dict(self) -> dict[str, Any]:
        grounding: dict[str, Any] = {"passed": self.grounding_ok}
        if self.claims is None:
            grounding |= {"checked_by": "recommender", "claims": [], "unmatched": []}
        else:
            grounding |= {
                "checked_by": "operator",
                "claims": self.claims,
                "unmatched": [c["text"] for c in self.claims if c["fact"] is None],
            }
        return {
            "passed": self.passed,
            "reasons": self.reasons,
            "source": self.source,
            "tone": {"passed": not self.tone_hits, "hits": self.tone_hits},
            "grounding": grounding,
            "disclosure": {"passed": self.disclosure_ok},
            "length": {
                "passed": self.length_ok,
                **self.lengths,
                "limits": {name: list(bounds) for name, bounds in self.limits.items()},
            },
        }


class NotAnAlternative(ValueError):
    """The catalog item named is not one of the recommendation's alternatives."""

    def __init__(self, catalog_item_id: str, allowed: list[str]):
        listed = ", ".join(allowed) if allowed else "none"
        super().__init__(
            f"{catalog_item_id} is not an alternative of this recommendation (its alternatives: {listed})"
        )
        self.catalog_item_id = catalog_item_id
        self.allowed = allowed


class GuardrailsFailed(ValueError):
    """The replacement text failed a check: nothing was changed."""

    def __init__(self, report: OverrideReport):
        super().__init__(f"the text fails the guardrails: {', '.join(report.reasons)}")
        self.report = report


def _tone_hits(fields: dict[str, str]) -> list[dict[str, str]]:
    return [{"field": name, **hit} for name, text in fields.items() for hit in check_tone(text).hits]


def _claim(where: str, claim: Claim) -> dict[str, Any]:
    return {"field": where, **claim.to_dict()}


def _same_figure(claim: Claim, stated: Claim) -> bool:
    if claim.unit != stated.unit:
        return False
    if isinstance(claim.value, float) and isinstance(stated.value, float):
        return abs(claim.value - stated.value) <= max(claim.tolerance, stated.tolerance)
    return claim.value == stated.value


def check_edit(item: QueuedItem, text: EditedText) -> OverrideReport:
    """The checks an operator's edited text of ``item`` must pass (see the module's docstring)."""
    facts = from_citable(item.facts)
    names = tuple(item.trusted_names)
    report = check_text(text.title, text.rationale, DISCLOSURE, facts, names)
    claims = [_claim("title_rationale", c) for c in report.grounding.claims]
    stated = extract_claims(item.body)
    for claim in check_grounding(text.body, facts, names).claims:
        if claim.matched is None and any(_same_figure(claim, s) for s in stated):
            claim = Claim(claim.text, claim.unit, claim.value, claim.tolerance, CATALOG_BODY)
        claims.append(_claim("body", claim))
    return OverrideReport(
        source="edited",
        tone_hits=_tone_hits({"title": text.title, "rationale": text.rationale, "body": text.body}),
        claims=claims,
        disclosure_ok=report.disclosure_ok,
        lengths={"title": len(text.title), "rationale": len(text.rationale), "body": len(text.body)},
    )


def check_alternative(alternative: Alternative) -> OverrideReport:
    """The checks re-run on a catalog alternative (grounding stays the recommender's)."""
    report = check_text(alternative.title, alternative.rationale, alternative.disclosure, from_citable([]))
    return OverrideReport(
        source="catalog_item",
        tone_hits=_tone_hits(
            {"title": alternative.title, "rationale": alternative.rationale, "body": alternative.body}
        ),
        claims=None,
        disclosure_ok=report.disclosure_ok,
        lengths={
            "title": len(alternative.title),
            "rationale": len(alternative.rationale),
            "body": len(alternative.body),
        },
    )


def replacement(
    item: QueuedItem, text: EditedText | None, catalog_item_id: str | None
) -> tuple[OverrideText, OverrideReport]:
    """The text that would replace ``item``'s and its report; exactly one of ``text`` and
    ``catalog_item_id``. Raises NotAnAlternative for a catalog item the recommender did not offer."""
    if (text is None) == (catalog_item_id is None):
        raise ValueError("an override is edited text or a catalog item, exactly one of them")
    if text is not None:
        edited = OverrideText(
            title=text.title,
            body=text.body,
            rationale=text.rationale,
            disclosure=DISCLOSURE,
            catalog_item_id=item.catalog_item_id,
            catalog_version=item.catalog_version,
            source="edited",
        )
        return edited, check_edit(item, text)
    assert catalog_item_id is not None
    alternative = item.alternative(catalog_item_id)
    if alternative is None:
        raise NotAnAlternative(catalog_item_id, [a.catalog_item_id for a in item.alternatives])
    chosen = OverrideText(**alternative.model_dump(), source="catalog_item")
    return chosen, check_alternative(alternative)
