"""Tone check: shaming or judgemental language fails (SPEC §6, "supportive, neutral").

The lexicon is data: each entry is a name and a case-insensitive regular expression. It covers
labels ("irresponsible", "reckless", "lazy", "bad with money"), accusations ("you're overspending",
"wasting", "living beyond your means", "your fault"), shame ("you should be ashamed", "embarrassing"),
absolutes and commands aimed at the reader ("you always", "you never", "you must", "you need to stop"),
insults ("stupid", "pathetic", "hopeless"), alarmist framing ("out of control", "drowning in debt"),
labels and scare lines ("you are broke", "your account is frozen", "URGENT", "call 555-0100 now",
"legal action").
Neutral descriptions of the same facts pass: "spending was $200 more than income",
"a card at 68 % utilization", "three recurring charges". Every catalog text and every generated text
goes through this check; tests exercise each entry.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from spendsense_shared.guardrails.ascii_scan import CACHED_TEXT_MAX, lowercase_twin

__all__ = ["TONE_LEXICON", "ToneResult", "check_tone"]

TONE_LEXICON: tuple[tuple[str, str], ...] = (
    ("overspending", r"\bover-?spend(?:s|ing|er|ers)?\b"),
    ("irresponsible", r"\birresponsib(?:le|ly|ility)\b"),
    ("wasting", r"\bwast(?:e|es|ed|ing|eful)\b"),
    (
        "bad_with_money",
        r"\b(?:bad|terrible|awful|hopeless)\s+(?:with|at)\s+(?:money|finances|budgeting|saving)\b",
    ),
    ("shame", r"\b(?:ashamed|shame(?:ful|less)?|embarrass(?:ed|ing|ment)?|disgrace(?:ful)?)\b"),
    ("reckless", r"\breckless(?:ly|ness)?\b"),
    ("careless", r"\bcareless(?:ly|ness)?\b"),
    ("lazy", r"\blaz(?:y|iness)\b"),
    ("insult", r"\b(?:stupid|foolish|dumb|idiotic|pathetic|clueless|hopeless|lousy|ridiculous)\b"),
    ("failure", r"\byou(?:'ve|\s+have)?\s+failed\b|\bfailures?\b"),
    ("out_of_control", r"\bout\s+of\s+control\b"),
    (
        "poor_choices",
        r"\b(?:poor|bad|terrible|awful|irrational)\s+(?:financial\s+|money\s+)?(?:choices|decisions|habits|judge?ment)\b",
    ),
    ("beyond_means", r"\bbeyond\s+your\s+means\b"),
    ("absolutes", r"\byou\s+(?:always|never)\b"),
    (
        "commands",
        r"\byou\s+(?:must|have\s+to|need\s+to\s+stop|had\s+better)\b|\bstop\s+(?:spending|buying|wasting)\b",
    ),
    ("blame", r"\b(?:your|you'?re)\s+(?:own\s+)?(?:fault|to\s+blame)\b"),
    ("frivolous", r"\b(?:frivolous(?:ly)?|splurg(?:e|es|ed|ing)|impulsive(?:ly)?|indulgent)\b"),
    ("cannot_manage", r"\byou\s+(?:can'?t|cannot|can\s+not)\s+(?:manage|handle|control|afford)\b"),
    ("lecture", r"\b(?:should\s+know\s+better|no\s+excuse|wake-?up\s+call|get\s+your\s+act\s+together)\b"),
    ("alarmist", r"\bdrowning\s+in\s+debt\b|\bfinancial\s+(?:mess|disaster|ruin)\b"),
    # Labels and scare lines seen in hostile merchant names and model answers ("You are broke",
    # "Your account is frozen", "URGENT call 555-0100"): never what this app says to anyone.
    (
        "broke",
        r"\byou(?:'?re|\s+are)\s+(?:\w+\s+)?(?:broke|poor|bankrupt|insolvent)\b|\b(?:flat|going|gone)\s+broke\b",
    ),
    (
        "account_threat",
        r"\byour\s+(?:\w+\s+)?(?:account|card|credit|score|profile|benefits?|funds|money)\s+"
        r"(?:is|are|has\s+been|have\s+been|will\s+be|was|were)\s+(?:\w+\s+)?(?:frozen|suspended|locked|"
        r"closed|blocked|terminated|seized|restricted|cancell?ed|flagged|garnished|compromised)\b",
    ),
    (
        "urgency",
        r"\burgent(?:ly)?\b|\bact\s+(?:now|immediately|fast)\b|\bfinal\s+(?:notice|warning)\b|"
        r"\blast\s+chance\b|\bbefore\s+it'?s\s+too\s+late\b|\btime\s+is\s+running\s+out\b|\basap\b",
    ),
    (
        "contact_lure",
        r"\b(?:call|text|dial|phone|contact|e-?mail|visit|click|write\s+to)\b[^.!?\n]{0,24}?"
        r"(?:\+?\d[\d\s().\-]{5,}\d|https?://|www\.|@)",
    ),
    (
        "threat",
        r"\b(?:arrest(?:ed)?|lawsuit|legal\s+action|warrant|debt\s+collectors?|garnish(?:ed|ment)?|"
        r"repossess(?:ed|ion)?)\b",
    ),
)
_COMPILED = tuple((name, re.compile(pattern, re.IGNORECASE)) for name, pattern in TONE_LEXICON)
# Every entry as one alternation: a text matches it exactly when some entry matches the text, so one
# scan clears a clean text (nearly every text); only a text it matches is searched entry by entry.
_ANY = re.compile("|".join(f"(?:{pattern})" for _, pattern in TONE_LEXICON), re.IGNORECASE)
_ANY_ASCII = lowercase_twin(_ANY)
# Typographic apostrophes and hyphens must not let "you\u2019re overspending" slip through.
_NORMALIZE = str.maketrans({"\u2019": "'", "\u2018": "'", "\u02bc": "'", "\u2010": "-", "\u2011": "-"})


@dataclass(frozen=True)
class ToneResult:
    passed: bool
    hits: list[dict[str, str]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {"passed": self.passed, "hits": self.hits}


def check_tone(*texts: str) -> ToneResult:
    """Fails with the matched lexicon entries when any text contains shaming or judgemental language."""
    hits = [{"rule": name, "match": match} for text in texts for name, match in _text_hits(text)]
    return ToneResult(passed=not hits, hits=hits)


def _text_hits(text: str) -> tuple[tuple[str, str], ...]:
    return _cached_hits(text) if len(text) <= CACHED_TEXT_MAX else _hits(text)


def _hits(text: str) -> tuple[tuple[str, str], ...]:
    """(entry, first match) of every lexicon entry that ``text`` contains, in lexicon order."""
    normalized = text.translate(_NORMALIZE)
    if normalized.isascii():
        if _ANY_ASCII.search(normalized.lower()) is None:
            return ()
    elif _ANY.search(normalized) is None:
        return ()
    return tuple(
        (name, match.group(0)) for name, pattern in _COMPILED if (match := pattern.search(normalized))
    )


# A catalog title is checked for every user, and a text again when it is written: the same texts.
_cached_hits = lru_cache(maxsize=4096)(_hits)
