"""The use cases the features API calls (commands change state, queries read it)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from spendsense_features.domain.model import (
    HistoryPosition,
    PersonaPage,
    RuleSetDetail,
    RuleSetVersion,
    StoredSignals,
)
from spendsense_shared.messagebus import Command, Query


@dataclass(frozen=True)
class AddRuleSet(Command[str]):
    """Validate and store a new rule-set version; returns the version."""

    document: Any
    created_by: str


@dataclass(frozen=True)
class ActivateRuleSet(Command[None]):
    """Activate a version and request a re-score of every consented user."""

    version: str
    requested_by: str


@dataclass(frozen=True)
class ListRuleSets(Query[list[RuleSetVersion]]):
    pass


@dataclass(frozen=True)
class GetRuleSet(Query[RuleSetDetail]):
    """One version's full content. Raises RuleSetNotFound."""

    version: str


@dataclass(frozen=True)
class GetSignals(Query[StoredSignals | None]):
    user_id: str
    window: str


@dataclass(frozen=True)
class GetPersona(Query[PersonaPage | None]):
    """Current personas and a page of history (``after``: where the previous page ended)."""

    user_id: str
    limit: int
    after: HistoryPosition | None = None
