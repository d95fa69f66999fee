"""The versioned content catalog: education items and partner offers, validated when it loads.

Format (``catalog/catalog-v1.yaml``)::

    version: catalog-v1
    education:
      - id: edu-utilization-explainer          # stable id, [a-z0-9-]
        format: article                         # article | budget_template | checklist | calculator | guide
        title: How credit utilization works
        body: ...                               # the content shown to the user (static, reviewed)
        personas: [high_utilization]            # SPEC §5 persona ids it fits
        signals: [card_utilization_high]        # signal tags (domain.vocabulary.SIGNAL_TAGS) it fits
        priority: 10                            # lower first among equal scores
        rationale:                              # "because" templates, first renderable one wins
          - "Your {card.name} ending in {card.mask} is at {card.utilization} utilization ..."
    offers:
      - id: offer-balance-transfer
        partner: ...
        product_type: balance_transfer_card     # domain.vocabulary.PRODUCT_TYPES
        terms: {apr: 21.99, intro_apr: 0, intro_months: 18, annual_fee: 0}
        eligibility: {min_annual_income: 35000, min_credit_score: 670, excludes_products: [...]}
        (title, body, personas, signals, priority, rationale as above)

Rejected at load, with every problem named: unknown persona, signal tag, product type or fact
placeholder; a digit in a rationale template's own text (figures must come from facts, so the
grounding check holds by construction); judgemental wording (tone lexicon); duplicate ids; and any
predatory offer — payday, title or pawn loans and similar products, wording that advertises them, or an
APR over 36 % (credit products must state their APR).
"""

from __future__ import annotations

import hashlib
import json
import re
from functools import lru_cache
from importlib import resources
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, ValidationError, model_validator

from spendsense_shared.guardrails.tone import check_tone

from .facts import FACT_UNITS, placeholders
from .vocabulary import PERSONA_IDS, PRODUCT_TYPES, SIGNAL_TAGS

__all__ = [
    "APR_CAP",
    "DEFAULT_CATALOG_VERSION",
    "Catalog",
    "CatalogError",
    "EducationItem",
    "Eligibility",
    "Offer",
    "Rationale",
    "Terms",
    "load_catalog",
    "parse_catalog",
]

DEFAULT_CATALOG_VERSION = "catalog-v1"
APR_CAP = 36.0
PREDATORY_PRODUCTS = frozenset(
    {
        "payday_loan",
        "title_loan",
        "pawn_loan",
        "cash_advance_loan",
        "rent_to_own",
        "tax_refund_anticipation_loan",
    }
)
CREDIT_PRODUCTS = frozenset(
    {"credit_card", "balance_transfer_card", "secured_credit_card", "personal_loan", "credit_builder_loan"}
)
_PREDATORY_WORDING = re.compile(
    r"\bpayday\b|\btitle\s+loan|\bpawn\b|\bcash\s+advance\s+loan|\bno\s+credit\s+check\s+loan|\brent[-\s]to[-\s]own\b",
    re.IGNORECASE,
)
_DIGIT = re.compile(r"\d")


class CatalogError(ValueError):
    """A catalog that cannot be loaded; ``problems`` names each one (item id and field)."""

    def __init__(self, problems: list[str]):
        self.problems = problems
        super().__init__("invalid content catalog:\n  - " + "\n  - ".join(problems))


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Terms(_Strict):
    apr: float | None = Field(None, ge=0, description="highest (go-to) APR in percent")
    intro_apr: float | None = Field(None, ge=0)
    intro_months: float | None = Field(None, ge=0)
    apy: float | None = Field(None, ge=0)
    annual_fee: float | None = Field(None, ge=0)
    monthly_fee: float | None = Field(None, ge=0)


class Eligibility(_Strict):
    min_annual_income: float | None = Field(None, ge=0)
    min_credit_score: int | None = Field(None, ge=300, le=850)
    max_utilization: float | None = Field(None, ge=0, description="fraction: 0.9 = 90 %")
    excludes_products: list[str] = []


class Rationale(_Strict):
    """A rationale template; ``when``: signal tags that must all be active for it to be used."""

    text: str = Field(min_length=20, max_length=600)
    when: list[str] = []

    @model_validator(mode="before")
    @classmethod
    def _from_string(cls, value: Any) -> Any:
        return {"text": value} if isinstance(value, str) else value


class _Item(_Strict):
    id: str = Field(pattern=r"^[a-z0-9][a-z0-9-]{2,63}$")
    title: str = Field(min_length=3, max_length=90)
    body: str = Field(min_length=20, max_length=2000)
    personas: list[str] = []
    signals: list[str] = []
    priority: int = 50
    url: str | None = None
    rationale: list[Rationale] = Field(min_length=1)


class EducationItem(_Item):
    kind: Literal["education"] = "education"
    format: Literal["article", "budget_template", "checklist", "calculator", "guide"]


class Offer(_Item):
    kind: Literal["offer"] = "offer"
    partner: str = Field(min_length=2, max_length=80)
    product_type: str
    terms: Terms = Terms()
    eligibility: Eligibility = Eligibility()


class Catalog(_Strict):
    version: str = Field(pattern=r"^catalog-v[0-9]+$")
    education: list[EducationItem]
    offers: list[Offer]

    _content_hash: str = PrivateAttr("")

    def model_post_init(self, context: Any, /) -> None:
        # Recorded in every trace: an edit to a catalog file without a version bump is caught on replay.
        canonical = json.dumps(self.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))
        self._content_hash = hashlib.sha256(canonical.encode()).hexdigest()

    @property
    def content_hash(self) -> str:
        return self._content_hash

    @property
    def items(self) -> list[EducationItem | Offer]:
        return [*self.education, *self.offers]

    def item(self, item_id: str) -> EducationItem | Offer:
        for item in self.items:
            if item.id == item_id:
                return item
        raise KeyError(item_id)


# -- validation --------------------------------------------------------------------------------------


def _vocabulary_problems(where: str, item: _Item) -> list[str]:
    problems = [
        f"{where}: unknown persona {p!r} (known: {', '.join(sorted(PERSONA_IDS))})"
        for p in item.personas
        if p not in PERSONA_IDS
    ]
    problems += [f"{where}: unknown signal tag {s!r}" for s in item.signals if s not in SIGNAL_TAGS]
    if not item.personas and not item.signals:
        problems.append(f"{where}: tag it with at least one persona or signal")
    return problems


def _template_problems(where: str, item: _Item, terms: Terms | None) -> list[str]:
    problems: list[str] = []
    stated = {k for k, v in (terms.model_dump() if terms else {}).items() if v is not None}
    for index, rationale in enumerate(item.rationale):
        at = f"{where}.rationale[{index}]"
        template = rationale.text
        problems += [f"{at}.when: unknown signal tag {t!r}" for t in rationale.when if t not in SIGNAL_TAGS]
        for key in placeholders(template):
            if key not in FACT_UNITS:
                problems.append(f"{at}: unknown fact {{{key}}}")
            elif key.startswith("offer.") and (terms is None or key.removeprefix("offer.") not in stated):
                problems.append(f"{at}: {{{key}}} needs that term in the offer's terms")
        if _DIGIT.search(re.sub(r"\{[a-z0-9_.]+\}", "", template)):
            problems.append(f"{at}: figures must come from {{fact}} placeholders, not literal digits")
    return problems


def _tone_problems(where: str, item: _Item) -> list[str]:
    result = check_tone(item.title, item.body, *(r.text for r in item.rationale))
    return [f"{where}: judgemental wording {hit['match']!r} ({hit['rule']})" for hit in result.hits]


def _offer_problems(offer: Offer) -> list[str]:
    where = f"offers[{offer.id}]"
    if offer.product_type in PREDATORY_PRODUCTS:
        return [f"{where}: {offer.product_type} is a predatory product and cannot be offered"]
    problems: list[str] = []
    for field in ("title", "body", "partner"):
        match = _PREDATORY_WORDING.search(getattr(offer, field))
        if match:
            problems.append(f"{where}.{field}: predatory product wording {match.group(0)!r}")
    for name in ("apr", "intro_apr"):
        value = getattr(offer.terms, name)
        if value is not None and value > APR_CAP:
            problems.append(
                f"{where}.terms.{name}: APR {value:g} % is over the {APR_CAP:g} % cap (predatory)"
            )
    if offer.product_type not in PRODUCT_TYPES:
        problems.append(f"{where}.product_type: unknown product type {offer.product_type!r}")
    if offer.product_type in CREDIT_PRODUCTS and offer.terms.apr is None:
        problems.append(f"{where}.terms.apr: a credit product must state its APR")
    problems += [
        f"{where}.eligibility.excludes_products: unknown product type {p!r}"
        for p in offer.eligibility.excludes_products
        if p not in PRODUCT_TYPES
    ]
    return problems


def _item_problems(item: EducationItem | Offer) -> list[str]:
    where = f"{item.kind}[{item.id}]" if isinstance(item, EducationItem) else f"offers[{item.id}]"
    terms = item.terms if isinstance(item, Offer) else None
    problems = _offer_problems(item) if isinstance(item, Offer) else []
    problems += _vocabulary_problems(where, item)
    problems += _template_problems(where, item, terms)
    problems += _tone_problems(where, item)
    return problems


def _pydantic_problems(error: ValidationError, data: Any) -> list[str]:
    problems = []
    for e in error.errors():
        path = _path(e["loc"], data)
        problems.append(f"{path}: {e['msg']}")
    return problems


def _path(loc: tuple[int | str, ...], data: Any) -> str:
    """``offers[offer-x].terms.apr`` rather than ``offers.3.terms.apr`` when the item has an id."""
    parts: list[str] = []
    node = data
    for step in loc:
        label = str(step)
        if isinstance(step, int) and isinstance(node, list) and step < len(node):
            node = node[step]
            label = str(node.get("id", step)) if isinstance(node, dict) else str(step)
            parts[-1] += f"[{label}]"
            continue
        node = node.get(step) if isinstance(node, dict) else None
        parts.append(label)
    return ".".join(parts) or "$"


def parse_catalog(data: dict[str, Any] | str) -> Catalog:
    """A validated catalog from its YAML text or parsed mapping; raises CatalogError naming every problem."""
    raw = yaml.safe_load(data) if isinstance(data, str) else data
    if not isinstance(raw, dict):
        raise CatalogError(["$: the catalog must be a mapping with version, education and offers"])
    _screen_predatory(raw)
    try:
        catalog = Catalog.model_validate(raw)
    except ValidationError as error:
        raise CatalogError(_pydantic_problems(error, raw)) from None
    problems: list[str] = []
    seen: set[str] = set()
    for item in catalog.items:
        if item.id in seen:
            problems.append(f"{item.kind}[{item.id}]: duplicate id")
        seen.add(item.id)
        problems += _item_problems(item)
    if problems:
        raise CatalogError(problems)
    return catalog


def _screen_predatory(raw: dict[str, Any]) -> None:
    """Predatory offers are named first and on their own, even when other fields are malformed, so the
    reason a catalog was refused is never buried under schema noise."""
    problems = []
    for offer in raw.get("offers") or []:
        if not isinstance(offer, dict):
            continue
        where = f"offers[{offer.get('id', '?')}]"
        if offer.get("product_type") in PREDATORY_PRODUCTS:
            problems.append(f"{where}: {offer['product_type']} is a predatory product and cannot be offered")
        terms = offer["terms"] if isinstance(offer.get("terms"), dict) else {}
        for name in ("apr", "intro_apr"):
            value = terms.get(name)
            if isinstance(value, int | float) and value > APR_CAP:
                problems.append(
                    f"{where}.terms.{name}: APR {value:g} % is over the {APR_CAP:g} % cap (predatory)"
                )
    if problems:
        raise CatalogError(problems)


def catalog_path(version: str) -> Path:
    return Path(str(resources.files("spendsense_recommender").joinpath("catalog", f"{version}.yaml")))


def load_catalog(version: str = DEFAULT_CATALOG_VERSION) -> Catalog:
    """The shipped catalog of that version (cached; an unknown version raises FileNotFoundError)."""
    if not re.fullmatch(r"catalog-v[0-9]+", version):
        raise ValueError(f"not a catalog version: {version!r}")
    return _load(version)


@lru_cache(maxsize=8)
def _load(version: str) -> Catalog:
    catalog = parse_catalog(catalog_path(version).read_text(encoding="utf-8"))
    if catalog.version != version:
        raise CatalogError([f"version: file {version}.yaml declares {catalog.version!r}"])
    return catalog
