"""The checks every text a user may see must pass (SPEC §6): tone, grounding against the user's own
figures, no foreign link, e-mail address or phone number, the disclosure and length limits; and the
one place untrusted names (merchants, cards) are made safe to show (``untrusted``). Pure, no I/O: the
recommender runs them on every generated text, the operator on every edited one.

The names below are imported from their modules on first use (PEP 562): code that needs only
``untrusted`` (the features service's signals, ``spendsense analyze``) does not pay for the checks and
the message contracts they import (~50 ms of start-up)."""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
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

_MODULES: dict[str, tuple[str, ...]] = {
    "checks": (
        "DISCLOSURE",
        "RATIONALE_MAX",
        "RATIONALE_MIN",
        "TITLE_MAX",
        "TITLE_MIN",
        "GuardrailReport",
        "check_text",
    ),
    "contacts": ("ContactResult", "check_contacts", "find_contacts"),
    "facts": ("Fact", "FactTable", "Unit", "citable", "from_citable"),
    "grounding": ("GroundingResult", "check_grounding"),
    "tone": ("ToneResult", "check_tone"),
    "untrusted": ("SafeName", "card_display", "merchant_display"),
}
_HOME = {name: module for module, names in _MODULES.items() for name in names}

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


def __getattr__(name: str) -> Any:
    module = _HOME.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(import_module(f"{__name__}.{module}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *_HOME])
