"""Everything a text must pass before it is accepted (SPEC §6): tone, grounding, contacts (no link,
e-mail address or phone number the catalog item does not have), disclosure, length.

Used on every generated text — the LLM's answer and the template's output alike — and again on
replay. The result is a plain dict for the decision trace; ``reasons`` names each failed check.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from spendsense_shared.guardrails.contacts import ContactResult, check_contacts
from spendsense_shared.guardrails.grounding import GroundingResult, check_grounding
from spendsense_shared.guardrails.tone import ToneResult, check_tone

from .facts import FactTable

__all__ = ["DISCLOSURE", "RATIONALE_MAX", "RATIONALE_MIN", "TITLE_MAX", "GuardrailReport", "check_text"]

DISCLOSURE = (
    "This is educational content, not financial advice. Consult a licensed advisor for personalized guidance."
)
TITLE_MIN, TITLE_MAX = 3, 90
RATIONALE_MIN, RATIONALE_MAX = 40, 600


@dataclass(frozen=True)
class GuardrailReport:
    tone: ToneResult
    grounding: GroundingResult
    disclosure_ok: bool
    length_ok: bool
    lengths: dict[str, int]
    contacts: ContactResult = field(default_factory=lambda: ContactResult(passed=True))

    @property
    def passed(self) -> bool:
        checks = (self.tone.passed, self.grounding.passed, self.contacts.passed)
        return all(checks) and self.disclosure_ok and self.length_ok

    @property
    def reasons(self) -> list[str]:
        checks = {
            "tone": self.tone.passed,
            "grounding": self.grounding.passed,
            "contacts": self.contacts.passed,
            "disclosure": self.disclosure_ok,
            "length": self.length_ok,
        }
        return [name for name, ok in checks.items() if not ok]

    def to_dict(self) -> dict[str, Any]:
        return {
            "passed": self.passed,
            "reasons": self.reasons,
            "tone": self.tone.to_dict(),
            "grounding": self.grounding.to_dict(),
            "contacts": self.contacts.to_dict(),
            "disclosure": {"passed": self.disclosure_ok},
            "length": {
                "passed": self.length_ok,
                **self.lengths,
                "limits": {"title": [TITLE_MIN, TITLE_MAX], "rationale": [RATIONALE_MIN, RATIONALE_MAX]},
            },
        }


def _normalized(text: str) -> str:
    return " ".join(text.split())


def check_text(
    title: str,
    rationale: str,
    disclosure: str,
    facts: FactTable,
    trusted_names: tuple[str, ...] = (),
    catalog_text: str = "",
) -> GuardrailReport:
    """Checks a candidate text against the facts it may cite. ``trusted_names``: catalog strings (the
    item's own title) whose digits are content, not claims about the user. ``catalog_text``: the
    catalog item's own text (title, content, rationale template): the links, addresses and phone
    numbers it has may be repeated, and its word-number phrases are not claims."""
    lengths = {"title": len(title), "rationale": len(rationale)}
    text = f"{title}\n{rationale}"
    return GuardrailReport(
        tone=check_tone(title, rationale),
        grounding=check_grounding(text, facts, trusted_names, catalog_text),
        disclosure_ok=_normalized(disclosure) == DISCLOSURE,
        length_ok=TITLE_MIN <= len(title) <= TITLE_MAX and RATIONALE_MIN <= len(rationale) <= RATIONALE_MAX,
        lengths=lengths,
        contacts=check_contacts(text, catalog_text),
    )
