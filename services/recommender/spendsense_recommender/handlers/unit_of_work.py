"""The recommender's ports: its repository and unit of work. SQL implementation:
:mod:`spendsense_recommender.adapters.repository`; in memory: ``tests/unit/fakes.py``."""

from __future__ import annotations

import abc
from collections.abc import Sequence
from typing import Any

from spendsense_recommender.domain.model import ApprovedPosition, StoredRecommendation, StoredTrace
from spendsense_recommender.domain.recommend import Recommendation
from spendsense_shared.consent import ConsentProjectingUnitOfWork


class RecommendationRepository(abc.ABC):
    """A user's recommendations, their hash-chained decision traces, and the user's feedback."""

    @abc.abstractmethod
    async def last_trace_hash(self, user_id: str) -> str | None: ...

    @abc.abstractmethod
    async def dismissed_items(self, user_id: str) -> set[str]: ...

    @abc.abstractmethod
    async def add(self, items: Sequence[Recommendation], *, upload_id: str | None, status: str) -> list[str]:
        """Store new recommendations and their traces; ids already stored are skipped (re-runs)."""

    @abc.abstractmethod
    async def record_action(self, recommendation_id: str, action: dict[str, Any], status: str | None) -> bool:
        """Chain an operator (or automatic) action onto the trace and apply the status it implies;
        False when there is no such recommendation."""

    @abc.abstractmethod
    async def approved_item_id(self, user_id: str, recommendation_id: str) -> str | None:
        """The catalog item of one of the user's approved recommendations."""

    @abc.abstractmethod
    async def add_feedback(
        self, user_id: str, recommendation_id: str, item_id: str, kind: str, comment: str | None
    ) -> None: ...

    @abc.abstractmethod
    async def approved(
        self, user_id: str, limit: int, after: ApprovedPosition | None = None
    ) -> list[StoredRecommendation]:
        """Approved recommendations, newest first (then rank, then id), strictly after ``after``."""

    @abc.abstractmethod
    async def chain(self, user_id: str) -> list[dict[str, Any]]:
        """Every trace of the user, in chain order."""

    @abc.abstractmethod
    async def traces(self, user_id: str, limit: int, after_seq: int | None = None) -> list[StoredTrace]:
        """Traces in chain order, after ``after_seq``."""


class RecommenderUnitOfWork(ConsentProjectingUnitOfWork):
    recommendations: RecommendationRepository
