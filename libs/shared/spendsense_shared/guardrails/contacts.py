"""Contact check: no link, e-mail address or phone number in a text unless the catalog item has it.

A generated text that sends the reader somewhere ("Visit http://… to repair your score", "write to
help@…", "call 1-800-…") is the classic lure; the model may only rephrase from facts and catalog
content, so any link, address or number it carries must already be in the catalog item it writes
about (``catalog_text``: the item's title, content and rationale template). Obfuscated forms count
("example[.]com", "name (at) host", fullwidth characters fold to ASCII first).
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from spendsense_shared.guardrails.ascii_scan import CACHED_TEXT_MAX

__all__ = ["ContactResult", "check_contacts", "find_contacts"]

_TLDS = (
    "com|net|org|info|biz|io|co|us|uk|ca|de|ru|cn|ly|me|app|xyz|online|site|top|link|click|shop|store"
    "|tk|gg|tv|cc|gov|edu|pay|money|finance|loan|loans|credit"
)
# A dot, plainly or obfuscated ("[.]", "(dot)", " dot "); plain dots take no spaces, so prose does not
# read as a domain ("… is free. Co-pays …").
_DOT = r"(?:\.|\s*(?:\[\.\]|\(\.\)|\(dot\)|\[dot\])\s*|\s+dot\s+)"
_AT = r"(?:\s*@\s*|\s*(?:\(at\)|\[at\])\s*|\s+at\s+(?=[\w\-]+(?:\s*(?:\[\.\]|\(dot\)|\[dot\])\s*|\s+dot\s+)))"
_PATTERNS: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("email", re.compile(rf"[\w.+\-]+{_AT}[\w\-]+(?:{_DOT}[\w\-]+)+", re.IGNORECASE)),
    (
        "link",
        re.compile(
            rf"\b[a-z][a-z0-9+.\-]*://\S+|\bwww{_DOT}\S+"
            rf"|\b[a-z0-9\-]+(?:{_DOT}[a-z0-9\-]+)*{_DOT}(?:{_TLDS})\b(?:/\S*)?",
            re.IGNORECASE,
        ),
    ),
    # Seven or more digits in phone shape: "555-0100", "(800) 555-0199", "+1 800 555 0199", "5550100".
    ("phone", re.compile(r"(?<![\w$.,])\+?\(?\d(?:[\s().\-/]{0,2}\d){6,}(?![\w%])")),
)
_DATE = re.compile(r"\d{4}-\d{1,2}-\d{1,2}|\d{1,2}/\d{1,2}/\d{2,4}")
# What an address or a link cannot do without, in lowercased ASCII text: most texts have neither, and
# these few substring tests are much cheaper than the patterns. An address needs an "@", "(at)" or
# "[at]", or " at " before an obfuscated dot ("[.]", "(dot)", "[dot]", " dot "); a link needs "://",
# "www", or a top-level domain after a dot (".", "[.]", "(.)", "(dot)", "[dot]", " dot ").
_ADDRESS_MARKS = ("@", "(at)", "[at]", "[.]", "dot")
_LINK_MARKS = ("://", "www")
_TLD_AFTER_DOT = re.compile(rf"(?:[.\])]|dot)\s*(?:{_TLDS})\b")


@dataclass(frozen=True)
class ContactResult:
    passed: bool
    found: list[dict[str, str]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"passed": self.passed, "found": self.found}


def _folded(text: str) -> str:
    return unicodedata.normalize("NFKC", text)


def _canonical(kind: str, text: str) -> str:
    if kind == "phone":
        return "".join(ch for ch in text if ch.isdigit())
    return re.sub(r"\s+|\[|\]|\(|\)", "", text.lower()).rstrip(".,;:")


def find_contacts(text: str) -> list[dict[str, str]]:
    """Every link, e-mail address and phone number in ``text`` (an address is not also a link)."""
    return [{"kind": kind, "text": found} for kind, found in _text_contacts(text)]


def _text_contacts(text: str) -> tuple[tuple[str, str], ...]:
    return _cached_contacts(text) if len(text) <= CACHED_TEXT_MAX else _contacts(text)


def _possible_kinds(folded: str) -> tuple[str, ...]:
    """The kinds ``folded`` may contain: a kind left out has no match in it (ASCII text only; any
    other text may contain every kind)."""
    if not folded.isascii():
        return ("email", "link", "phone")
    lowered = folded.lower()
    email = any(mark in lowered for mark in _ADDRESS_MARKS)
    link = any(mark in lowered for mark in _LINK_MARKS) or _TLD_AFTER_DOT.search(lowered) is not None
    return (*(("email",) if email else ()), *(("link",) if link else ()), "phone")


def _contacts(text: str) -> tuple[tuple[str, str], ...]:
    folded = _folded(text)
    kinds = _possible_kinds(folded)
    found: list[tuple[str, str]] = []
    taken: list[tuple[int, int]] = []
    for kind, pattern in _PATTERNS:
        if kind not in kinds:
            continue  # no match: it would add nothing
        for match in pattern.finditer(folded):
            start, end = match.span()
            if any(start < t_end and t_start < end for t_start, t_end in taken):
                continue
            if kind == "phone" and _DATE.fullmatch(match.group(0).strip()):
                continue  # "2026-10-28", "10/28/2026": a date, which grounding checks
            taken.append((start, end))
            found.append((kind, match.group(0)))
    return tuple(found)


# The same texts come back: a catalog title for every user, a text when it is written after selection.
_cached_contacts = lru_cache(maxsize=4096)(_contacts)


@lru_cache(maxsize=1024)
def _catalog_contacts(catalog_text: str) -> frozenset[tuple[str, str]]:
    """The contacts of a catalog item's text: the same few texts are checked against for every user."""
    return frozenset((c["kind"], _canonical(c["kind"], c["text"])) for c in find_contacts(catalog_text))


def check_contacts(text: str, catalog_text: str = "") -> ContactResult:
    """Passes when every contact in ``text`` also appears in ``catalog_text``."""
    allowed = _catalog_contacts(catalog_text)
    foreign = [c for c in find_contacts(text) if (c["kind"], _canonical(c["kind"], c["text"])) not in allowed]
    return ContactResult(passed=not foreign, found=foreign)
