"""The checks every text a user may see must pass (SPEC §6): tone, grounding against the user's own
figures, the disclosure and length limits. Pure, no I/O: the recommender runs them on every generated
text, the operator on every edited one."""

from spendsense_shared.guardrails.checks import (
    DISCLOSURE,
    RATIONALE_MAX,
    RATIONALE_MIN,
    TITLE_MAX,
    TITLE_MIN,
    GuardrailReport,
    check_text,
)
from spendsense_shared.guardrails.facts import Fact, FactTable, Unit, citable, from_citable
from spendsense_shared.guardrails.grounding import GroundingResult, check_grounding
from spendsense_shared.guardrails.tone import ToneResult, check_tone

__all__ = [
    "DISCLOSURE",
    "RATIONALE_MAX",
    "RATIONALE_MIN",
    "TITLE_MAX",
    "TITLE_MIN",
    "Fact",
    "FactTable",
    "GroundingResult",
    "GuardrailReport",
    "ToneResult",
    "Unit",
    "check_grounding",
    "check_text",
    "check_tone",
    "citable",
    "from_citable",
]
