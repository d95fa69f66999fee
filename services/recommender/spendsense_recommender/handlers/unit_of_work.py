"""The recommender's ports: its repository and unit of work. SQL implementation:
:mod:`spendsense_recommender.adapters.repository`; in memory: ``tests/unit/fakes.py``."""

from __future__ import annotations

import abc
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from spendsense_recommender.domain.model import (
    ApprovedPosition,
    ReviewTarget,
    ShownText,
    StoredRecommendation,
    StoredTrace,
)
from spendsense_recommender.domain.recommend import Recommendation
from spendsense_shared.claimed_lines import ClaimedLinesRepository
from spendsense_shared.consent import ConsentProjectingUnitOfWork


@dataclass(frozen=True)
class UserHistory:
    """What a user's new recommendations depend on besides their analysis: the items they dismissed
    (never recommended again) and the end of their trace chain (new traces continue it)."""

    dismissed: set[str]
    last_trace_hash: str | None


class RecommendationRepository(abc.ABC):
    """A user's recommendations, their hash-chained decision traces, and the user's feedback."""

    @abc.abstractmethod
    async def last_trace_hash(self, user_id: str) -> str | None:
        """The hash of the last trace of the user's own chain (new traces continue it)."""

    @abc.abstractmethod
    async def dismissed_items(self, user_id: str) -> set[str]: ...

    async def histories(self, user_ids: Sequence[str]) -> dict[str, UserHistory]:
        """:meth:`dismissed_items` and :meth:`last_trace_hash` of each of ``user_ids``: what their next
        recommendations depend on. An adapter may read a batch's users at once."""
        return {
            user: UserHistory(await self.dismissed_items(user), await self.last_trace_hash(user))
            for user in user_ids
        }

    @abc.abstractmethod
    async def stored_texts(self, recommendation_ids: Sequence[str]) -> dict[str, tuple[str, str, str, str]]:
        """Title, body, rationale and disclosure as stored (before any review), by id."""

    async def add(self, items: Sequence[Recommendation], *, upload_id: str | None, status: str) -> list[str]:
        """Store new recommendations and their traces; ids already stored are skipped (re-runs). The ids
        added, in ``items``' order."""
        return (await self.add_many([(items, upload_id)], status=status))[0]

    @abc.abstractmethod
    async def add_many(
        self, batches: Sequence[tuple[Sequence[Recommendation], str | None]], *, status: str
    ) -> list[list[str]]:
        """:meth:`add` of each (items, upload id), as if one after another: the ids each added."""

    @abc.abstractmethod
    async def for_review(self, recommendation_id: str) -> ReviewTarget | None:
        """The recommendation as a review finds it (owner, status, what it shows, its trace), locked until
        the transaction ends so that two reviews of one item apply one after the other; None when there
        is no such recommendation (never stored, or erased)."""

    @abc.abstractmethod
    async def save_review(
        self, recommendation_id: str, *, status: str, trace: dict[str, Any], shown: ShownText | None
    ) -> None:
        """Store a review's outcome: the trace with its action chained on (the sealed content and hash
        unchanged), the status, and — an accepted override — the text shown in place of the generated
        one (catalog item and version, title, body, rationale, disclosure, details)."""

    @abc.abstractmethod
    async def visible_item_id(self, user_id: str, recommendation_id: str) -> str | None:
        """The catalog item shown by one of the user's visible (approved or overridden) recommendations."""

    @abc.abstractmethod
    async def add_feedback(
        self, user_id: str, recommendation_id: str, item_id: str, kind: str, comment: str | None
    ) -> None: ...

    @abc.abstractmethod
    async def visible(
        self, user_id: str, limit: int, after: ApprovedPosition | None = None
    ) -> list[StoredRecommendation]:
        """The recommendations the user sees (approved, or overridden: with the override text), newest
        first (then rank, then id), strictly after ``after``."""

    @abc.abstractmethod
    async def chains(self, user_id: str) -> dict[str, list[dict[str, Any]]]:
        """Every trace of the user, per hash chain (chain id → traces in chain order; the chain that
        started first comes first): the user's own chain, and those of accounts merged into theirs."""

    @abc.abstractmethod
    async def traces(self, user_id: str, limit: int, after_seq: int | None = None) -> list[StoredTrace]:
        """Every trace of the user in the order they were stored (each chain's in chain order), after
        ``after_seq``."""

    @abc.abstractmethod
    async def merge_user(self, source_user_id: str, target_user_id: str) -> None:
        """The source account was merged into the target: the source's recommendations, traces and
        feedback become the target's. Each trace stays in the chain it was sealed in (its stored hashes
        are never rewritten); the target's own chain goes on from its own last trace. A second call finds
        nothing of the source: it changes nothing."""

    @abc.abstractmethod
    async def erase_user(self, user_id: str) -> None:
        """Delete the user's recommendations, decision traces and feedback (an erasure)."""


class RecommenderUnitOfWork(ConsentProjectingUnitOfWork):
    recommendations: RecommendationRepository
    # which batch objects of review items hold a line of each user's (an erasure blanks it)
    review_objects: ClaimedLinesRepository
