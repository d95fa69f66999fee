"""Grounding check: every figure in a text must match a supplied fact, unit-aware (SPEC §6).

Deterministic, no second model call. The text is scanned left to right for claims:

* dates — ISO (2026-10-28), "October 28, 2026" / "Oct 28", "10/28/2026" → unit ``date``;
* card digits — "ending in 4523", "last four 4523", "x4523", "…4523" → unit ``mask``;
* amounts — "$3,400", "$24.99", "$3.4k", "3,400 dollars" → unit ``usd``;
* percentages — "68 %", "68%", "68 percent" → ``percent``;
* durations — "59 days", "0.4 months", "18-month" → ``days`` / ``months`` (weeks and years are units
  too, and no fact has them, so they fail);
* any other number → ``count`` (a bare four-digit number may also be a card's last four or the year
  of a date fact).

A claim matches a fact of the same unit when it equals the fact's value or its unrounded figure at the
precision written ("$3,413" matches 3412.55; "$3,400" does not; "0.4 months" matches 0.43). A unit
mismatch ("$68" against a 68 % fact) fails. Names from the facts (card, merchant, catalog title) are
removed before scanning, so digits inside them ("7-Eleven") are not claims.

Numbers written as words are claims too ("about fifty thousand dollars" → usd 50,000 ± 500,
"twelve percent" → percent 12, "twenty-five" → count 25, "50 thousand dollars" → usd 50,000), read
to the precision written like "$50k". A small number word alone ("one of the inputs", "two of the
biggest") is ordinary language, not a claim: below ten, a word number is a claim only with a unit, a
"$" or a scale word. A word-number phrase that the catalog item itself contains (``catalog_text``) is
the catalog's, not a claim about the user.
"""

from __future__ import annotations

import math
import re
import unicodedata
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from datetime import date
from functools import lru_cache
from typing import Any

from spendsense_shared.guardrails.ascii_scan import CACHED_TEXT_MAX, lowercase_twin
from spendsense_shared.guardrails.facts import Fact, FactTable

__all__ = ["Claim", "GroundingResult", "check_grounding", "extract_claims"]

_MONTH_NAMES = {
    name: index
    for index, names in enumerate(
        (
            ("january", "jan"),
            ("february", "feb"),
            ("march", "mar"),
            ("april", "apr"),
            ("may",),
            ("june", "jun"),
            ("july", "jul"),
            ("august", "aug"),
            ("september", "sep", "sept"),
            ("october", "oct"),
            ("november", "nov"),
            ("december", "dec"),
        ),
        start=1,
    )
    for name in names
}
_MONTHS_RE = "|".join(sorted(_MONTH_NAMES, key=len, reverse=True))
_NUMBER = r"\d[\d,]*(?:\.\d+)?"
_MASK_PREFIX = r"ending\s+(?:in\s+)?|last\s+(?:four|4)\s+(?:digits\s+)?(?:of\s+)?|\bx(?=\d)|[*•]+\s*|\.\.\.|…"
_UNIT = r"%|percent\b|per\s?cent\b|days?\b|months?\b|weeks?\b|years?\b|dollars?\b|usd\b"
_SMALL_WORDS = [
    *("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine", "ten", "eleven"),
    *("twelve", "thirteen", "fourteen", "fifteen", "sixteen", "seventeen", "eighteen", "nineteen"),
]
_TENS_WORDS = ["twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety"]
_SCALE = "k|thousand|million|billion"
_WORD_VALUES = {
    **{w: i for i, w in enumerate(_SMALL_WORDS)},
    **{w: 10 * (i + 2) for i, w in enumerate(_TENS_WORDS)},
}
_SCALE_WORDS = {"hundred": 100, "thousand": 1_000, "million": 1_000_000, "billion": 1_000_000_000}
_NUMBER_WORD = "|".join(sorted([*_WORD_VALUES, *_SCALE_WORDS], key=len, reverse=True))
_WORDS_RE = (
    rf"(?:\b(?:a|one)\s+(?=(?:hundred|thousand|million|billion)\b))?\b(?:{_NUMBER_WORD})\b"
    rf"(?:(?:[\s-]+(?:and[\s-]+)?)(?:{_NUMBER_WORD})\b)*"
)
_WORDS = re.compile(_WORDS_RE, re.IGNORECASE)
_CLAIM = re.compile(
    rf"""
    (?P<iso>\b\d{{4}}-\d{{2}}-\d{{2}}\b)
  | (?P<named>\b(?P<mon>{_MONTHS_RE})\.?\s+(?P<day>\d{{1,2}})(?:st|nd|rd|th)?\b
        (?:,?\s+(?P<year>\d{{4}})\b)?)
  | (?P<slash>\b(?P<sm>\d{{1,2}})/(?P<sd>\d{{1,2}})(?:/(?P<sy>\d{{2,4}}))?\b)
  | (?P<mask>(?:{_MASK_PREFIX})(?P<maskd>\d{{2,4}})\b)
  | (?P<usd>-?\$\s?(?:(?P<usdn>{_NUMBER})(?:\s?(?P<usdm>{_SCALE})\b)?|(?P<usdw>{_WORDS_RE})))
  | (?P<num>-?(?P<numv>{_NUMBER}))(?:\s?(?P<numm>{_SCALE})\b)?(?:[\s-]*(?P<unit>{_UNIT}))?
  | (?P<words>{_WORDS_RE})(?:[\s-]*(?P<wunit>{_UNIT}))?
    """,
    re.IGNORECASE | re.VERBOSE,
)
# Where a claim can start: a digit, "-", "$", "*", "•", ".", "…", "ending", "last", or a word starting
# with a letter a date, card digits or a number word starts with (j f m a s o n d: months; e l x:
# "ending", "last", "x4523"; z o t f s e n h m b a: number words, "a"/"one hundred"). A branch of
# ``_CLAIM`` that could start with anything else must be added here. The scan tries ``_CLAIM`` only
# there (a few times faster): the same matches, as ``extract_claims``'s tests check against
# ``_CLAIM`` itself.
_CLAIM_START = r"(?=[\d$*.\-•…]|ending|last|\b[abdefhjmnostxz])"
_CLAIM_ASCII = lowercase_twin(re.compile(f"{_CLAIM_START}(?:{_CLAIM.pattern})", _CLAIM.flags))
_UNIT_WORDS = {
    "%": "percent",
    "percent": "percent",
    "per cent": "percent",
    "day": "days",
    "days": "days",
    "month": "months",
    "months": "months",
    "week": "weeks",
    "weeks": "weeks",
    "year": "years",
    "years": "years",
    "dollar": "usd",
    "dollars": "usd",
    "usd": "usd",
}
_MULTIPLIERS = {"k": 1_000, "thousand": 1_000, "million": 1_000_000, "billion": 1_000_000_000}


@dataclass(frozen=True)
class Claim:
    text: str
    unit: str
    value: float | str  # a number, or an ISO date / "--MM-DD" when the year is not written
    tolerance: float = 0.0
    matched: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"text": self.text, "unit": self.unit, "value": self.value, "fact": self.matched}


@dataclass(frozen=True)
class GroundingResult:
    passed: bool
    claims: list[Claim] = field(default_factory=list)

    @property
    def unmatched(self) -> list[Claim]:
        return [c for c in self.claims if c.matched is None]

    def to_dict(self) -> dict[str, Any]:
        return {
            "passed": self.passed,
            "claims": [c.to_dict() for c in self.claims],
            "unmatched": [c.text for c in self.unmatched],
        }


def _precision_tolerance(number: str, multiplier: float = 1.0) -> float:
    decimals = len(number.split(".", 1)[1]) if "." in number else 0
    return 0.5 * 10.0 ** (-decimals) * multiplier + 1e-9


def _number(text: str) -> float:
    return float(text.replace(",", ""))


def _date_claim(m: re.Match[str]) -> Claim | None:
    try:
        if m.group("iso"):
            return Claim(m.group(0), "date", date.fromisoformat(m.group("iso")).isoformat())
        if m.group("named"):
            month, day, year = _MONTH_NAMES[m.group("mon").lower()], int(m.group("day")), m.group("year")
        else:
            month, day, year = int(m.group("sm")), int(m.group("sd")), m.group("sy")
            if year and len(year) == 2:
                year = "20" + year
        if year:
            return Claim(m.group(0), "date", date(int(year), month, day).isoformat())
        date(2000, month, day)  # validates month/day (2000 is a leap year)
        return Claim(m.group(0), "date", f"--{month:02d}-{day:02d}")
    except ValueError:
        return Claim(m.group(0), "date", m.group(0))  # not a real date: can match nothing


def _claim(m: re.Match[str]) -> Claim | None:
    if m.group("iso") or m.group("named") or m.group("slash"):
        return _date_claim(m)
    if m.group("mask"):
        return Claim(m.group(0), "mask", m.group("maskd"))
    if m.group("usd"):
        if m.group("usdw"):
            value, tolerance = _words_value(m.group("usdw"))
            return Claim(m.group(0), "usd", value, tolerance)
        multiplier = _MULTIPLIERS.get((m.group("usdm") or "").lower(), 1)
        raw = m.group("usdn")
        return Claim(m.group(0), "usd", _number(raw) * multiplier, _precision_tolerance(raw, multiplier))
    if m.group("words"):
        return _words_claim(m)
    raw = m.group("numv")
    multiplier = _MULTIPLIERS.get((m.group("numm") or "").lower(), 1)
    unit_word = " ".join((m.group("unit") or "").lower().split())
    unit = _UNIT_WORDS.get(unit_word, "count")
    return Claim(m.group(0).strip(), unit, _number(raw) * multiplier, _precision_tolerance(raw, multiplier))


def _plain_words(text: str) -> list[str]:
    """The words as the case-insensitive pattern read them: look-alikes it matches as ASCII letters (the
    long s, the Kelvin sign, the dotted capital I) folded onto those letters, so "\u017fix" is "six"."""
    decomposed = unicodedata.normalize("NFKD", text.casefold())
    plain = "".join(c for c in decomposed if not unicodedata.combining(c))
    return re.split(r"[\s-]+", plain)


def _words_value(text: str) -> tuple[float, float]:
    """The value and the precision it is written to: "fifty thousand" → 50000 ± 500 (half the last
    scale word, as for "$50k"; half a unit without one). A word the pattern took for a number word that
    folds onto none gives NaN: a figure no fact grounds (the text fails the check), never a crash."""
    total, current, last_scale = 0, 0, 1
    for word in _plain_words(text):
        if word not in _WORD_VALUES and word not in _SCALE_WORDS and word not in ("and", "", "a", "hundred"):
            return math.nan, 0.0
        if word in ("and", ""):
            continue
        if word == "a":
            current = 1
        elif word in _WORD_VALUES:
            current += _WORD_VALUES[word]
            last_scale = 1
        elif word == "hundred":
            current = max(current, 1) * 100
            last_scale = 100
        else:
            total += max(current, 1) * _SCALE_WORDS[word]
            current, last_scale = 0, _SCALE_WORDS[word]
    return float(total + current), 0.5 * last_scale + 1e-9


def _words_claim(m: re.Match[str]) -> Claim | None:
    value, tolerance = _words_value(m.group("words"))
    unit_word = " ".join((m.group("wunit") or "").lower().split())
    scaled = any(w in _SCALE_WORDS for w in _plain_words(m.group("words")))
    if not unit_word and not scaled and value < 10:
        return None  # "one of the inputs", "two of the biggest": language, not a figure
    unit = _UNIT_WORDS.get(unit_word, "count")
    return Claim(m.group(0).strip(), unit, value, tolerance)


def _is_catalog_phrase(claim: Claim, catalog_words: frozenset[str]) -> bool:
    match = _WORDS.match(claim.text)
    return match is not None and " ".join(match.group(0).lower().split()) in catalog_words


def extract_claims(text: str) -> list[Claim]:
    return list(_cached_claims(text) if len(text) <= CACHED_TEXT_MAX else _claims(text))


def _claim_matches(text: str) -> Iterator[re.Match[str]]:
    """``_CLAIM.finditer(text)``; on ASCII text the lowercase twin finds where each match starts (a
    few times faster) and the match is taken there with ``_CLAIM`` itself, the same match the scan
    would have found (``ascii_scan``)."""
    if not text.isascii():
        yield from _CLAIM.finditer(text)
        return
    for found in _CLAIM_ASCII.finditer(text.lower()):
        match = _CLAIM.match(text, found.start())
        assert match is not None
        assert match.end() == found.end()
        yield match


def _claims(text: str) -> tuple[Claim, ...]:
    return tuple(c for c in (_claim(m) for m in _claim_matches(text)) if c is not None)


# Claims are immutable: a text checked again (the writer re-checks what selection checked) is read once.
_cached_claims = lru_cache(maxsize=4096)(_claims)


def _numeric_match(claim: Claim, fact: Fact) -> bool:
    assert isinstance(claim.value, float)
    candidates = [fact.value, fact.raw] if fact.unit != "percent" else [fact.value]
    if fact.unit == "percent" and isinstance(fact.raw, int | float):
        candidates.append(fact.raw * 100)
    return any(
        isinstance(v, int | float) and abs(abs(v) - claim.value) <= claim.tolerance for v in candidates
    )


def _matches(claim: Claim, fact: Fact) -> bool:
    if claim.unit == "date":
        return fact.unit == "date" and (
            fact.value == claim.value or str(fact.value)[4:] == str(claim.value)[1:]
        )
    if claim.unit == "mask":
        return fact.unit == "mask" and fact.value == claim.value
    if claim.unit == "count" and fact.unit in ("mask", "date") and float(claim.value).is_integer():
        return _four_digit_match(claim, fact)
    return fact.unit == claim.unit and _numeric_match(claim, fact)


def _four_digit_match(claim: Claim, fact: Fact) -> bool:
    """A bare four-digit number is fine when it is a card's last four or the year of a date fact."""
    digits = claim.text.lstrip("-")
    if len(digits) != 4:
        return False
    return fact.value == digits if fact.unit == "mask" else str(fact.value)[:4] == digits


def _without_names(text: str, facts: Sequence[Fact]) -> str:
    names = {str(f.value) for f in facts if f.unit == "text"}
    names |= {f.display for f in facts if f.unit == "text"}
    for name in sorted((n for n in names if n), key=len, reverse=True):
        text = text.replace(name, " ")
    return text


@lru_cache(maxsize=1024)  # the same few catalog texts, for every user
def _catalog_words(catalog_text: str) -> frozenset[str]:
    """The word-number phrases of the catalog item's own text (lowercase, single-spaced)."""
    return frozenset(" ".join(m.group(0).lower().split()) for m in _WORDS.finditer(catalog_text))


def check_grounding(
    text: str, facts: FactTable, names: tuple[str, ...] = (), catalog_text: str = ""
) -> GroundingResult:
    """Passes when every claim in ``text`` matches a fact (``names``: extra trusted strings, such as the
    catalog title, whose digits are not claims; ``catalog_text``: the catalog item's own text, whose
    word-number phrases are not claims either)."""
    for name in sorted(names, key=len, reverse=True):
        text = text.replace(name, " ")
    catalog_words = _catalog_words(catalog_text) if catalog_text else frozenset()
    table = list(facts.values())  # once, not once per claim
    claims = []
    for claim in extract_claims(_without_names(text, table)):
        if catalog_words and _is_catalog_phrase(claim, catalog_words):
            continue
        matched = next((f.key for f in table if _matches(claim, f)), None)
        claims.append(Claim(claim.text, claim.unit, claim.value, claim.tolerance, matched))
    return GroundingResult(passed=all(c.matched for c in claims), claims=claims)
