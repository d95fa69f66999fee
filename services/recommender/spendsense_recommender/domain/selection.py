"""Selection: which education items and offers a user gets (SPEC §6), as a pure, replayable decision.

Inputs (``SelectionInput``, stored whole in every trace): the report snapshot, the user's eligibility
facts, the ids the user dismissed, and the catalog and selection versions. Same input → same decision,
in a stable order, so re-running never produces a different set or a duplicate.

Scoring per item: +100 when it is tagged with the primary persona, +40 per other persona matched in
the chosen window, +15 per persona matched only in the other window, +20 per active signal tag it
fits; ties by catalog priority, then id. An item is a candidate only when one of its rationale
templates can be filled with the user's facts and the filled text passes every guardrail.

Education (3 to 5): up to 3 of the primary persona's best items, then the best item for each other
matched persona, then the best remaining fitting items up to 5; below 3, general items fill in.
Offers (1 to 3): every offer is checked (all rules recorded); eligible ones are taken by score, at most
one per product type. Dismissed items are never selected.

Every candidate not selected (eligible, its rationale fits and passes the guardrails, not dismissed) is
kept in ``SelectionDecision.alternatives``, each kind best first: what an operator may put in a selected
item's place (``domain.alternatives``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, field_serializer

from spendsense_shared.guardrails.checks import check_text

from .catalog import Catalog, EducationItem, Offer
from .eligibility import EligibilityCheck, UserFacts, check_offer
from .facts import FactTable, build_facts, offer_facts, placeholders, render_template
from .signals import Evidence, derive_signal_tags
from .snapshot import UserSnapshot
from .vocabulary import DISCLOSURE, GENERAL_WELLNESS, SELECTION_VERSION
from .writer import catalog_text

__all__ = ["Pick", "SelectionDecision", "SelectionInput", "decide", "item_facts"]

MIN_EDUCATION, MAX_EDUCATION, PRIMARY_EDUCATION = 3, 5, 3
MAX_OFFERS = 3
W_PRIMARY, W_MATCHED, W_RECENT, W_SIGNAL = 100, 40, 15, 20


class SelectionInput(BaseModel):
    model_config = ConfigDict(frozen=True)

    snapshot: UserSnapshot
    user: UserFacts
    dismissed: frozenset[str] = frozenset()
    catalog_version: str
    selection_version: str = SELECTION_VERSION

    @field_serializer("dismissed")
    def _sorted_dismissed(self, value: frozenset[str]) -> list[str]:
        return sorted(value)  # canonical order: the trace hash must not depend on set iteration

    @field_serializer("user")
    def _user(self, value: UserFacts) -> dict[str, Any]:
        return {**value.model_dump(mode="json"), "products": sorted(value.products)}


class Pick(BaseModel):
    model_config = ConfigDict(frozen=True)

    item_id: str
    kind: Literal["education", "offer"]
    rank: int
    score: int
    reasons: list[str]
    template_index: int
    signals: dict[str, Evidence]
    checks: list[EligibilityCheck] = []


class SelectionDecision(BaseModel):
    model_config = ConfigDict(frozen=True)

    selection_version: str
    catalog_version: str
    catalog_hash: str
    persona: dict[str, Any]
    signal_tags: dict[str, Evidence]
    education: list[Pick]
    offers: list[Pick]
    rejected_offers: list[dict[str, Any]]
    skipped: list[dict[str, str]]
    # Candidates not selected, education then offers, each kind best first (rank: its place among them).
    alternatives: list[Pick] = []

    @property
    def picks(self) -> list[Pick]:
        return [*self.education, *self.offers]

    def pick(self, item_id: str) -> Pick | None:
        return next((p for p in self.picks if p.item_id == item_id), None)


@dataclass(frozen=True, eq=False)
class _Candidate:
    item: EducationItem | Offer
    score: int
    reasons: list[str]
    template_index: int
    signals: dict[str, Evidence]
    checks: list[EligibilityCheck] = field(default_factory=list)

    @property
    def order(self) -> tuple[int, int, str]:
        return (-self.score, self.item.priority, self.item.id)


def item_facts(item: EducationItem | Offer, facts: FactTable) -> FactTable:
    return facts.merged(offer_facts(item.terms.model_dump())) if isinstance(item, Offer) else facts


def _usable_template(item: EducationItem | Offer, facts: FactTable, tags: dict[str, Evidence]) -> int | None:
    """The first rationale template whose conditions hold, that renders with these facts and passes
    every guardrail."""
    available = item_facts(item, facts)
    for index, rationale in enumerate(item.rationale):
        if any(tag not in tags for tag in rationale.when):
            continue
        text = render_template(rationale.text, available)
        if text is None:
            continue
        used = available.subset(placeholders(rationale.text))
        own_text = catalog_text(item.title, item.body, rationale.text)
        if check_text(item.title, text, DISCLOSURE, used, (item.title,), own_text).passed:
            return index
    return None


def _score(
    item: EducationItem | Offer, snapshot: UserSnapshot, tags: dict[str, Evidence]
) -> tuple[int, list[str]]:
    score, reasons = 0, []
    weights = [(snapshot.primary_persona, W_PRIMARY)]
    weights += [(m.id, W_MATCHED) for m in snapshot.matched if m.id != snapshot.primary_persona]
    weights += [(m.id, W_RECENT) for m in snapshot.recent_matched]
    for persona, weight in weights:
        if persona in item.personas:
            score += weight
            reasons.append(f"persona:{persona}")
    for tag in item.signals:
        if tag in tags:
            score += W_SIGNAL
            reasons.append(f"signal:{tag}")
    return score, reasons


def _candidate(
    item: EducationItem | Offer, snapshot: UserSnapshot, tags: dict[str, Evidence], facts: FactTable
) -> _Candidate | None:
    index = _usable_template(item, facts, tags)
    if index is None:
        return None
    score, reasons = _score(item, snapshot, tags)
    signals = {t: tags[t] for t in item.signals if t in tags}
    return _Candidate(item=item, score=score, reasons=reasons, template_index=index, signals=signals)


def _take(
    pool: list[_Candidate],
    chosen: list[_Candidate],
    limit: int,
    keep: Callable[[_Candidate], bool] = lambda c: True,
) -> None:
    """Append pool members that pass ``keep`` (in pool order) until ``chosen`` has ``limit`` items."""
    for candidate in pool:
        if len(chosen) >= limit:
            return
        if not any(candidate is c for c in chosen) and keep(candidate):
            chosen.append(candidate)


def _tagged(persona: str) -> Callable[[_Candidate], bool]:
    return lambda c: persona in c.item.personas


def _choose_education(pool: list[_Candidate], snapshot: UserSnapshot) -> list[_Candidate]:
    pool = sorted(pool, key=lambda c: c.order)
    chosen: list[_Candidate] = []
    _take(pool, chosen, PRIMARY_EDUCATION, lambda c: snapshot.primary_persona in c.item.personas)
    for persona in [m.id for m in [*snapshot.matched, *snapshot.recent_matched]]:
        if persona != snapshot.primary_persona:
            _take(pool, chosen, min(len(chosen) + 1, MAX_EDUCATION), _tagged(persona))
    _take(pool, chosen, MAX_EDUCATION, lambda c: c.score > 0)
    general = sorted(
        pool, key=lambda c: (GENERAL_WELLNESS not in c.item.personas, c.item.priority, c.item.id)
    )
    _take(general, chosen, MIN_EDUCATION)
    return chosen


def _choose_offers(eligible: list[_Candidate]) -> list[_Candidate]:
    chosen: list[_Candidate] = []
    seen_types: set[str] = set()
    for candidate in sorted(eligible, key=lambda c: c.order):
        assert isinstance(candidate.item, Offer)
        if len(chosen) < MAX_OFFERS and candidate.item.product_type not in seen_types:
            chosen.append(candidate)
            seen_types.add(candidate.item.product_type)
    return chosen


def _unchosen(pool: list[_Candidate], chosen: list[_Candidate]) -> list[_Candidate]:
    return sorted((c for c in pool if not any(c is d for d in chosen)), key=lambda c: c.order)


def _picks(chosen: Iterable[_Candidate]) -> list[Pick]:
    return [
        Pick(
            item_id=c.item.id,
            kind=c.item.kind,
            rank=rank,
            score=c.score,
            reasons=c.reasons,
            template_index=c.template_index,
            signals=c.signals,
            checks=c.checks,
        )
        for rank, c in enumerate(chosen, start=1)
    ]


def _offer_pool(
    catalog: Catalog,
    inputs: SelectionInput,
    tags: dict[str, Evidence],
    facts: FactTable,
    skipped: list[dict[str, str]],
) -> tuple[list[_Candidate], list[dict[str, Any]]]:
    snapshot = inputs.snapshot
    personas = [*snapshot.persona_ids, *(m.id for m in snapshot.recent_matched)]
    eligible, rejected = [], []
    for offer in catalog.offers:
        if offer.id in inputs.dismissed:
            skipped.append({"item_id": offer.id, "reason": "dismissed"})
            continue
        checks = check_offer(offer, inputs.user, personas, tags, snapshot.signals.credit.max_utilization)
        failed = [c.rule for c in checks if not c.passed]
        candidate = None if failed else _candidate(offer, snapshot, tags, facts)
        if candidate is None:
            reason = f"failed: {', '.join(failed)}" if failed else "no rationale fits the user's facts"
            rejected.append(
                {"item_id": offer.id, "reason": reason, "checks": [c.model_dump(mode="json") for c in checks]}
            )
            continue
        eligible.append(replace(candidate, checks=checks))
    return eligible, rejected


def _education_pool(
    catalog: Catalog,
    inputs: SelectionInput,
    tags: dict[str, Evidence],
    facts: FactTable,
    skipped: list[dict[str, str]],
) -> list[_Candidate]:
    pool = []
    for item in catalog.education:
        if item.id in inputs.dismissed:
            skipped.append({"item_id": item.id, "reason": "dismissed"})
            continue
        candidate = _candidate(item, inputs.snapshot, tags, facts)
        if candidate is None:
            skipped.append({"item_id": item.id, "reason": "no rationale fits the user's facts"})
        else:
            pool.append(candidate)
    return pool


def decide(inputs: SelectionInput, catalog: Catalog) -> SelectionDecision:
    """The selection for this input (pure and deterministic)."""
    if inputs.catalog_version != catalog.version:
        raise ValueError(f"input names catalog {inputs.catalog_version}, got {catalog.version}")
    snapshot = inputs.snapshot
    tags = derive_signal_tags(snapshot)
    facts = build_facts(snapshot)
    skipped: list[dict[str, str]] = []
    pool = _education_pool(catalog, inputs, tags, facts, skipped)
    education = _choose_education(pool, snapshot)
    eligible, rejected = _offer_pool(catalog, inputs, tags, facts, skipped)
    offers = _choose_offers(eligible)
    return SelectionDecision(
        selection_version=SELECTION_VERSION,
        catalog_version=catalog.version,
        catalog_hash=catalog.content_hash,
        persona={
            "window": snapshot.window,
            "primary": snapshot.primary_persona,
            "matched": [m.model_dump() for m in snapshot.matched],
            "recent_matched": [m.model_dump() for m in snapshot.recent_matched],
        },
        signal_tags=tags,
        education=_picks(education),
        offers=_picks(offers),
        rejected_offers=rejected,
        skipped=skipped,
        alternatives=[*_picks(_unchosen(pool, education)), *_picks(_unchosen(eligible, offers))],
    )
