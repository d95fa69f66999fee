"""The use cases the recommender API calls (commands change state, queries read it)."""

from __future__ import annotations

from dataclasses import dataclass

from spendsense_shared.messagebus import Command, Query

from .model import ApprovedPage, ApprovedPosition, TraceCheck, TracePage


@dataclass(frozen=True)
class RecordFeedback(Command[None]):
    """The user's feedback on one of their approved recommendations (raises RecommendationNotFound)."""

    user_id: str
    recommendation_id: str
    kind: str
    comment: str | None = None


@dataclass(frozen=True)
class ApprovedRecommendations(Query[ApprovedPage]):
    user_id: str
    limit: int
    after: ApprovedPosition | None = None


@dataclass(frozen=True)
class ListTraces(Query[TracePage]):
    user_id: str
    limit: int
    after_seq: int | None = None


@dataclass(frozen=True)
class CheckTrace(Query[TraceCheck | None]):
    """One trace with the user's chain verified and the decision replayed; None when there is none."""

    user_id: str
    recommendation_id: str
