"""What each text was checked against, and what an operator may put in a recommendation's place.

Both are recorded in the decision trace (sealed with it), travel to the operator in the review item
(``recommendations.generated``), and are what the recommender checks an override against:

* ``citable`` — the facts a text may cite and the trusted catalog strings (``check_text``'s ``facts`` and
  ``trusted_names``): exactly what the guardrail check of the text used, as the trace records it::

      {"facts": [CitableFact as JSON, ...], "trusted_names": [catalog title]}

* ``alternatives_for`` — for each selected item, up to ``MAX_ALTERNATIVES`` other catalog items of the
  same kind that the user is eligible for and that were not selected (``SelectionDecision.alternatives``,
  best first), each written for this user by the template writer and kept only when it passes every
  guardrail check. An offer's alternatives leave out the product types the user's *other* offers already
  have (at most one offer per product type, as in selection). Deterministic: replay recomputes them.
"""

from __future__ import annotations

from typing import Any

from spendsense_shared.guardrails.facts import citable

from .catalog import Catalog, EducationItem, Offer
from .facts import FactTable, placeholders, render_template
from .selection import Pick, SelectionDecision, item_facts
from .writer import WriteRequest, template_text

__all__ = [
    "MAX_ALTERNATIVES",
    "alternatives_for",
    "citable_record",
    "item_details",
    "write_request",
]

MAX_ALTERNATIVES = 3


def write_request(
    item: EducationItem | Offer, pick: Pick, facts: FactTable, persona: str, catalog: Catalog
) -> WriteRequest:
    """The write request of one item: its chosen template and exactly the facts that template cites."""
    template = item.rationale[pick.template_index].text
    used = item_facts(item, facts).subset(placeholders(template))
    rendered = render_template(template, used)
    assert rendered is not None  # selection only picks templates that render
    return WriteRequest(
        item_id=item.id,
        kind=item.kind,
        catalog_version=catalog.version,
        title=item.title,
        body=item.body,
        persona=persona,
        template=template,
        template_index=pick.template_index,
        facts=used,
        rendered=rendered,
    )


def citable_record(request: WriteRequest) -> dict[str, Any]:
    """What the guardrail check of the request's text (template's or model's) was given, as JSON."""
    return {
        "facts": [f.model_dump(mode="json") for f in citable(request.facts)],
        "trusted_names": [request.title],
    }


def item_details(item: EducationItem | Offer) -> dict[str, Any]:
    """The catalog fields shown beside an item's text (format, partner, product type, link)."""
    return {
        "format": item.format if isinstance(item, EducationItem) else None,
        "partner": item.partner if isinstance(item, Offer) else None,
        "product_type": item.product_type if isinstance(item, Offer) else None,
        "url": item.url,
    }


def _written(
    item: EducationItem | Offer, pick: Pick, facts: FactTable, persona: str, catalog: Catalog
) -> dict[str, Any] | None:
    request = write_request(item, pick, facts, persona, catalog)
    text = template_text(request)
    if not text.guardrails.get("passed"):
        return None
    return {
        "catalog_item_id": item.id,
        "catalog_version": catalog.version,
        "kind": item.kind,
        "score": pick.score,
        "template_index": pick.template_index,
        "title": text.title,
        "body": item.body,
        "rationale": text.rationale,
        "disclosure": text.disclosure,
        "details": item_details(item),
        "citable": citable_record(request),
        "guardrails": {"passed": True, "reasons": []},
    }


def alternatives_for(
    decision: SelectionDecision, catalog: Catalog, facts: FactTable, persona: str
) -> dict[str, list[dict[str, Any]]]:
    """Selected item id → its alternatives as the trace records them (best first, at most three). Each
    candidate is written (once) only when it is needed."""
    written: dict[str, dict[str, Any] | None] = {}

    def text_of(pick: Pick) -> dict[str, Any] | None:
        if pick.item_id not in written:
            written[pick.item_id] = _written(catalog.item(pick.item_id), pick, facts, persona, catalog)
        return written[pick.item_id]

    def product_type(item_id: str) -> str | None:
        item = catalog.item(item_id)
        return item.product_type if isinstance(item, Offer) else None

    product_types = {p.item_id: product_type(p.item_id) for p in decision.offers}
    found: dict[str, list[dict[str, Any]]] = {}
    for pick in decision.picks:
        taken = {t for item_id, t in product_types.items() if item_id != pick.item_id}
        fitting: list[dict[str, Any]] = []
        for candidate in decision.alternatives:
            if len(fitting) == MAX_ALTERNATIVES:
                break
            if candidate.kind != pick.kind:
                continue
            if product_type(candidate.item_id) in taken:
                continue
            alternative = text_of(candidate)
            if alternative is not None:
                fitting.append(alternative)
        found[pick.item_id] = fitting
    return found
