"""The features service's ports: one abstract repository per aggregate, and its unit of work.
SQL implementations: :mod:`spendsense_features.adapters.repositories`; in memory: ``tests/unit/fakes.py``."""

from __future__ import annotations

import abc
from datetime import date
from typing import Any, TypeAlias

from spendsense_features.domain.model import (
    HistoryPosition,
    PersonaAssignment,
    PersonaTransition,
    StoredRuleSet,
    StoredSignals,
    UserSnapshotKeys,
)
from spendsense_shared.claimed_lines import ClaimedLinesRepository
from spendsense_shared.consent import ConsentProjectingUnitOfWork


class AnalysisRepository(abc.ABC):
    """A user's latest signals and personas per window, and every persona assignment ever made."""

    @abc.abstractmethod
    async def save(self, report: dict[str, Any], upload_id: str | None, rule_set_version: str) -> None:
        """Store an analysis report: signals and current persona per window, plus a history entry
        (recording the persona it replaces)."""

    async def save_many(
        self, reports: list[dict[str, Any]], upload_id: str | None, rule_set_version: str
    ) -> None:
        """:meth:`save` for each report (of distinct users); an adapter may store them in bulk."""
        for report in reports:
            await self.save(report, upload_id, rule_set_version)

    @abc.abstractmethod
    async def analyzed(self, upload_id: str, user_ids: list[str]) -> set[str]:
        """Which of ``user_ids`` were analyzed for ``upload_id`` already (an upload announced again).
        Holds the lock of each of these users' analysis of the upload until the transaction ends:
        announcements of one upload naming the same users are analyzed in turn, never at once (each
        would find the users not analyzed yet); its other chunks of users are analyzed meanwhile."""

    @abc.abstractmethod
    async def reports_of_upload(
        self, upload_id: str, user_ids: list[str]
    ) -> list[tuple[dict[str, Any], str]]:
        """The stored analysis report and rule set version of each of ``user_ids`` whose current signals
        and personas are of ``upload_id`` (a user analyzed since for a newer upload is left out)."""

    @abc.abstractmethod
    async def signals(self, user_id: str, window: str) -> StoredSignals | None: ...

    @abc.abstractmethod
    async def current_personas(self, user_id: str) -> list[PersonaAssignment]: ...

    @abc.abstractmethod
    async def persona_history(
        self, user_id: str, limit: int, after: HistoryPosition | None = None
    ) -> list[PersonaTransition]:
        """Newest first (assigned_at, then window, descending), strictly after ``after``."""

    @abc.abstractmethod
    async def merge_user(self, source_user_id: str, target_user_id: str) -> None:
        """The source account was merged into the target: the source's signals and current personas
        become the target's for each window the target has none of (the target's own win), the rest
        of the source's are deleted, and the source's persona history is re-keyed to the target (the
        history keeps both). A second call finds nothing of the source: it changes nothing."""

    @abc.abstractmethod
    async def erase_user(self, user_id: str) -> None:
        """Delete the user's signals, current personas and whole persona history (an erasure)."""


class SnapshotRepository(abc.ABC):
    """Where each user's latest normalized snapshot is (a re-score reads it without the profile service)."""

    @abc.abstractmethod
    async def remember(
        self, user_id: str, upload_id: str, object_keys: list[str], as_of: date | None
    ) -> None: ...

    async def remember_many(
        self, object_keys: dict[str, list[str]], upload_id: str, as_of: date | None
    ) -> None:
        """:meth:`remember` for each user (user id → their keys); an adapter may store them in bulk."""
        for user_id, keys in object_keys.items():
            await self.remember(user_id, upload_id, keys, as_of)

    @abc.abstractmethod
    async def of_consented_users(self) -> list[UserSnapshotKeys]:
        """The latest snapshot of every user whose consent is current, ordered by user id."""

    @abc.abstractmethod
    async def merge_user(self, source_user_id: str, target_user_id: str) -> None:
        """The source account was merged into the target: the source's snapshot pointer becomes the
        target's unless the target has its own; the source's is deleted."""

    @abc.abstractmethod
    async def erase_user(self, user_id: str) -> None:
        """Delete the user's snapshot pointer (an erasure)."""


# Which batch objects of the data bucket hold a line of each user's ``PersonaDetails`` (the claim checks of
# ``personas.assigned``), so an erasure blanks those lines: the shared index of claimed lines.
DetailsObjectRepository: TypeAlias = ClaimedLinesRepository


class RuleSetRepository(abc.ABC):
    """Stored rule-set documents (the packaged one is stored only once re-activated)."""

    @abc.abstractmethod
    async def latest_activated(self) -> StoredRuleSet | None: ...

    @abc.abstractmethod
    async def get(self, version: str) -> StoredRuleSet | None: ...

    @abc.abstractmethod
    async def add(self, version: str, document: Any, created_by: str) -> bool:
        """Store a new version; False (and nothing changed) when the version exists."""

    @abc.abstractmethod
    async def activate(self, version: str) -> None:
        """Mark a stored version activated now (the latest activation wins)."""

    @abc.abstractmethod
    async def all(self) -> list[StoredRuleSet]:
        """Every stored version, oldest first."""


class FeaturesUnitOfWork(ConsentProjectingUnitOfWork):
    analyses: AnalysisRepository
    snapshots: SnapshotRepository
    rule_sets: RuleSetRepository
    details_objects: DetailsObjectRepository
