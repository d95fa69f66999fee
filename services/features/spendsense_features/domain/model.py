"""What the features service stores and reads back: small read models the repositories return."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from typing import Any


@dataclass(frozen=True)
class StoredSignals:
    """The latest signals of one user for one window."""

    user_id: str
    window: str
    as_of: date
    upload_id: str | None
    computed_at: datetime
    values: dict[str, Any]


@dataclass(frozen=True)
class PersonaAssignment:
    """The current persona of one user for one window."""

    window: str
    primary: str
    matched: list[dict[str, Any]]
    rule_set_version: str
    as_of: date
    assigned_at: datetime


@dataclass(frozen=True)
class PersonaTransition:
    """One assignment ever made (newest first in history pages)."""

    window: str
    persona: str
    previous: str | None
    rule_set_version: str
    as_of: date
    assigned_at: datetime


@dataclass(frozen=True)
class HistoryPosition:
    """Where a persona-history page ends: the next page starts strictly after it."""

    assigned_at: datetime
    window: str


@dataclass(frozen=True)
class PersonaPage:
    user_id: str
    current: dict[str, PersonaAssignment]
    history: list[PersonaTransition]
    next_after: HistoryPosition | None


@dataclass(frozen=True)
class UserSnapshotKeys:
    """The object keys of a user's latest normalized snapshot."""

    user_id: str
    object_keys: list[str]


@dataclass(frozen=True)
class StoredRuleSet:
    version: str
    document: Any
    created_by: str
    activated_at: datetime | None


@dataclass(frozen=True)
class RuleSetVersion:
    """One line of the rule-set listing."""

    version: str
    source: str  # "packaged" or who added it
    active: bool
    packaged: bool
    activated_at: datetime | None = None


@dataclass(frozen=True)
class RuleSetDetail:
    """One version's full content, to show it and compare it with another."""

    version: str
    source: str  # "packaged" or who added it
    active: bool
    packaged: bool
    activated_at: datetime | None
    document: Any  # the document as added (the YAML or JSON body, parsed)
    rule_set: dict[str, Any]  # the rule set as evaluated (rules.rule_set_to_dict)
    source_text: str | None  # the file's text, for the packaged version (added versions keep no text)


class RuleSetNotFound(LookupError):
    pass


class RuleSetConflict(ValueError):
    """The version exists already (rule sets are immutable) or is the packaged one."""
