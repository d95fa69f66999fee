"""Untrusted names (merchant and card names from bank records) made safe to show a user.

A name from an upload is data anyone can write: "URGENT call 555-0100 re refund", "You are broke",
"Visit http://… to repair your score". Every place that puts such a name in front of a user (the
recommender's rationale facts, the features report's merchant fields the web app charts) passes it
through :func:`merchant_display` or :func:`card_display` first, which give one of three things:

* ``known`` — a known merchant's own name: "NETFLIX.COM 1234", "SPOTIFY USA" and "HULU 877-8244858 CA"
  become "Netflix", "Spotify" and "Hulu" (the canonical name, never any of the rest of the string);
* ``cleaned`` — the name itself, cleaned (control and format characters removed, compatibility forms
  folded, whitespace collapsed, capped at :data:`MAX_NAME_CHARS`), when nothing in it looks hostile;
* ``neutral`` — a neutral label, "a merchant ending in KXTR" (a card: "card"), when the name looks
  like an instruction, a phone number, a link, an e-mail address or a sentence, or fails the tone
  check. The four letters are a stable digest of the name (consonants only, so they spell no word):
  the same charge gets the same label in every rationale and chart.

Pure and deterministic, no I/O. ``unsafe_reasons`` says why a name was replaced (the decision trace
keeps the raw name; only operators read traces).
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from dataclasses import dataclass
from functools import lru_cache
from typing import Literal

from spendsense_shared.guardrails.contacts import find_contacts
from spendsense_shared.guardrails.tone import check_tone

__all__ = [
    "KNOWN_MERCHANTS",
    "MAX_NAME_CHARS",
    "NEUTRAL_CARD",
    "SafeName",
    "card_display",
    "clean_untrusted",
    "known_merchant",
    "merchant_display",
    "neutral_merchant_label",
    "unsafe_reasons",
]

MAX_NAME_CHARS = 40
NEUTRAL_CARD = "card"  # fits "Your {card.name} ending in 4523"
_LABEL_LETTERS = "BCDFGHJKLMNPQRSTVWXZ"

# Canonical name → the token sequences a bank descriptor of it starts with (after ``merchant_key``).
KNOWN_MERCHANTS: dict[str, tuple[str, ...]] = {
    "Netflix": ("netflix",),
    "Spotify": ("spotify",),
    "Hulu": ("hulu", "hlu"),
    "Disney+": ("disney plus", "disneyplus", "disney"),
    "Max": ("hbo max", "hbo", "=max"),
    "YouTube Premium": ("google youtubepremium", "google youtube", "youtube premium", "youtube"),
    "Google Workspace": ("google gsuite", "google workspace", "gsuite"),
    "Google": ("google",),
    "Apple": ("apple",),
    "Adobe": ("adobe",),
    "Xbox": ("microsoft xbox", "xbox"),
    "Microsoft": ("microsoft", "msft"),
    "Dropbox": ("dropbox", "dbx dropbox"),
    "Planet Fitness": ("planet fitness", "planet fit"),
    "Peloton": ("peloton",),
    "The New York Times": ("nytimes", "nyt", "new york times"),
    "Audible": ("audible",),
    "OpenAI": ("openai", "chatgpt"),
    "Paramount+": ("paramount plus", "paramount"),
    "Duolingo": ("duolingo",),
    "Verizon": ("verizon", "vzwrlss"),
    "Xfinity": ("comcast", "xfinity"),
    "HelloFresh": ("hellofresh",),
    "QuickBooks": ("intuit qbooks", "quickbooks"),
    "Slack": ("slack",),
    "Zoom": ("zoom",),
    "Amazon Prime": ("amazon prime", "amzn prime", "prime video"),
    "Amazon Web Services": ("amazon web services", "aws"),
    "Amazon": ("amazon", "amzn"),
    "Walmart": ("walmart", "wal mart", "wm supercenter"),
    "Target": ("target",),
    "Costco": ("costco",),
    "Starbucks": ("starbucks",),
    "Uber": ("uber",),
    "Lyft": ("lyft",),
    "DoorDash": ("doordash",),
    "T-Mobile": ("t mobile", "tmobile"),
    "AT&T": ("at t", "att"),
    "Sirius XM": ("siriusxm", "sirius xm", "sirius"),
    "Patreon": ("patreon",),
    "Twitch": ("twitch",),
    "PlayStation": ("playstation", "sony playstation"),
    "Nintendo": ("nintendo",),
    "LinkedIn": ("linkedin",),
    "GitHub": ("github",),
    "Canva": ("canva",),
    "Grammarly": ("grammarly",),
    "Crunchyroll": ("crunchyroll",),
    "Peacock": ("peacock",),
    "ESPN+": ("espn plus", "espn"),
    "Instacart": ("instacart",),
    "YNAB": ("ynab", "you need a budget"),
}
# A descriptor is a known merchant when its words start with an alias ("=": when they are the alias).
# Longest first, so "google youtube" wins over "google" and "microsoft xbox" over "microsoft".
_ALIASES: tuple[tuple[tuple[str, ...], bool, str], ...] = tuple(
    sorted(
        (
            (tuple(alias.lstrip("=").split()), alias.startswith("="), name)
            for name, aliases in KNOWN_MERCHANTS.items()
            for alias in aliases
        ),
        key=lambda entry: -len(entry[0]),
    )
)

_KEY_RULES: tuple[tuple[re.Pattern[str], str], ...] = tuple(
    (re.compile(pattern), replacement)
    for pattern, replacement in (
        (r"^(?:sq|tst|pp|sp|pos|ach|dd|ppd|paypal)\s*\*\s*", ""),  # processor prefixes ("SQ *COFFEE")
        (r"\+", " plus "),  # "Disney+", "Paramount+"
        (r"\.(?:com|net|org|co|io|tv|us)\b", " "),  # "netflix.com" → "netflix"
        (r"[^a-z]+", " "),  # digits, punctuation, store numbers
    )
)
# Seven or more digits however separated (a phone number, an account or reference number), and any
# "@"; links, addresses and phone shapes as the contact check finds them in generated text.
_DIGITS = re.compile(r"(?:\d[\W_]*){6,}\d")  # whatever separates them: "555-0100", "1234:5678"
_INSTRUCTION = re.compile(
    r"ignore|instruction|disregard|system\s*:|assistant\s*:|prompt|[{}<>`\[\]|\\]|\bjson\b|\boutput\b",
    re.IGNORECASE,
)
_ADDRESSED = re.compile(r"\b(?:you|your|yours|yourself|you'?re|you'?ve|you'?ll|u\s+r)\b", re.IGNORECASE)
_LURE = re.compile(
    r"\b(?:urgent(?:ly)?|immediate(?:ly)?|asap|act\s+now|call|dial|text\s+(?:us|now|back)|reply|click|visit"
    r"|verify|verification|password|passcode|ssn|social\s+security|suspend(?:ed)?|frozen|freeze|locked"
    r"|blocked|warning|alert|overdue|final\s+notice|winner|prize|lottery|refund\s+(?:owed|due|pending)"
    r"|lawsuit|arrest|warrant|penalty|broke|bankrupt|debt\s+collector|collections?\s+agency)\b",
    re.IGNORECASE,
)
# "!" or "?", or a full stop after a word that is no abbreviation ("St. Louis", "ACME Inc. Foods" pass)
_SENTENCE_END = re.compile(
    r"[!?]|\b(?!(?:inc|ltd|corp|llc|bros|intl|dept|ave|blvd|mkt|mktp)\.)[a-z]{3,}\.\s+\S", re.IGNORECASE
)
_MAX_WORDS = 6  # a bank descriptor is a few words; more than this reads as a sentence


@dataclass(frozen=True)
class SafeName:
    """What a user may see of an untrusted name, and how it was obtained."""

    text: str
    source: Literal["known", "cleaned", "neutral"]
    reasons: tuple[str, ...] = ()


def clean_untrusted(text: str, cap: int = MAX_NAME_CHARS) -> str:
    """Printable, single-line, length-capped text: control and format characters (zero-width, bidi
    overrides) removed, whitespace collapsed, compatibility forms folded (NFKC)."""
    if text.isascii() and text.isprintable():  # most bank descriptors: nothing to fold or remove
        collapsed = " ".join(text.split())
    else:
        # "…" is kept (NFKC would make it "..."): it marks a capped name, and cleaning is idempotent.
        folded = "…".join(unicodedata.normalize("NFKC", part) for part in text.split("…"))
        kept = "".join(
            " " if ch.isspace() else ch for ch in folded if unicodedata.category(ch)[0] != "C" or ch.isspace()
        )
        collapsed = " ".join(kept.split())
    return collapsed if len(collapsed) <= cap else collapsed[: cap - 1].rstrip() + "…"


def merchant_key(text: str) -> str:
    """Lowercase words only: processor prefixes, domains, digits and punctuation removed."""
    key = unicodedata.normalize("NFKC", text).lower().strip()
    for pattern, replacement in _KEY_RULES:
        key = pattern.sub(replacement, key)
    return " ".join(key.split())


def known_merchant(text: str) -> str | None:
    """The canonical name of a known merchant whose descriptor ``text`` is, else None."""
    tokens = tuple(merchant_key(text).split())
    for alias, exact, name in _ALIASES:
        if tokens == alias or (not exact and tokens[: len(alias)] == alias):
            return name
    return None


def unsafe_reasons(text: str) -> list[str]:
    """Why ``text`` must not be shown as a name (empty: it may be)."""
    folded = unicodedata.normalize("NFKC", text)
    contacts = {c["kind"] for c in find_contacts(folded)}
    checks = {
        "phone_number": "phone" in contacts or _DIGITS.search(folded),
        "link": "link" in contacts,
        "email": "email" in contacts or "@" in folded,
        "instruction": _INSTRUCTION.search(folded),
        "addressed_to_reader": _ADDRESSED.search(folded.replace("\u2019", "'")),
        "lure": _LURE.search(folded),
        "sentence": _SENTENCE_END.search(folded) or len(folded.split()) > _MAX_WORDS,
    }
    reasons = [name for name, hit in checks.items() if hit]
    if not check_tone(folded).passed:
        reasons.append("tone")
    return reasons


def neutral_merchant_label(text: str) -> str:
    """ "a merchant ending in KXTR": four consonants from a digest of the cleaned name, stable."""
    digest = hashlib.blake2b(" ".join(text.lower().split()).encode(), digest_size=4).digest()
    letters = "".join(_LABEL_LETTERS[b % len(_LABEL_LETTERS)] for b in digest)
    return f"a merchant ending in {letters}"


_ANY_DIGIT = re.compile(r"\d")


@lru_cache(maxsize=16384)
def _merchant_verdict(shape: str) -> tuple[str | None, tuple[str, ...]]:
    """(known merchant, reasons to hide) of a cleaned name whose digits are all "0": every check reads
    digits by count and position only, so "KROGER #1234" and "KROGER #5678" share one verdict."""
    known = known_merchant(shape)
    return (known, ()) if known is not None else (None, tuple(unsafe_reasons(shape)))


@lru_cache(maxsize=65536)
def merchant_display(raw: str | None) -> SafeName | None:
    """What a user sees for a merchant name from bank records; None for an empty name."""
    if raw is None:
        return None
    cleaned = clean_untrusted(raw, cap=10 * MAX_NAME_CHARS)
    if not cleaned:
        return None
    known, reasons = _merchant_verdict(_ANY_DIGIT.sub("0", cleaned))
    if known is not None:
        return SafeName(known, "known")
    if reasons:
        return SafeName(neutral_merchant_label(cleaned), "neutral", reasons)
    return SafeName(clean_untrusted(cleaned), "cleaned")


@lru_cache(maxsize=4096)
def card_display(raw: str | None) -> SafeName | None:
    """What a user sees for a card's name ("Visa Signature"); "card" when it looks hostile."""
    if raw is None:
        return None
    cleaned = clean_untrusted(raw, cap=10 * MAX_NAME_CHARS)
    if not cleaned:
        return None
    reasons = unsafe_reasons(cleaned)
    if reasons:
        return SafeName(NEUTRAL_CARD, "neutral", tuple(reasons))
    return SafeName(clean_untrusted(cleaned), "cleaned")
