"""The checks every text a user may see must pass (SPEC §6): tone, grounding against the user's own
figures, no foreign link, e-mail address or phone number, the disclosure and length limits; and the
one place untrusted names (merchants, cards) are made safe to show (``untrusted``). Pure, no I/O: the
recommender runs them on every generated text, the operator on every edited one."""

from spendsense_shared.guardrails.checks import (
    DISCLOSURE,
    RATIONALE_MAX,
    RATIONALE_MIN,
    TITLE_MAX,
    TITLE_MIN,
    GuardrailReport,
    check_text,
)
from spendsense_shared.guardrails.contacts import ContactResult, check_contacts, find_contacts
from spendsense_shared.guardrails.facts import Fact, FactTable, Unit, citable, from_citable
from spendsense_shared.guardrails.grounding import GroundingResult, check_grounding
from spendsense_shared.guardrails.tone import ToneResult, check_tone
from spendsense_shared.guardrails.untrusted import SafeName, card_display, merchant_display

__all__ = [
    "DISCLOSURE",
    "RATIONALE_MAX",
    "RATIONALE_MIN",
    "TITLE_MAX",
    "TITLE_MIN",
    "ContactResult",
    "Fact",
    "FactTable",
    "GroundingResult",
    "GuardrailReport",
    "SafeName",
    "ToneResult",
    "Unit",
    "card_display",
    "check_contacts",
    "check_grounding",
    "check_text",
    "check_tone",
    "citable",
    "find_contacts",
    "from_citable",
    "merchant_display",
]
