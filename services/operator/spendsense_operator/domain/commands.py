"""The use cases the operator API calls (commands change state, queries read it)."""

from __future__ import annotations

from dataclasses import dataclass

from spendsense_operator.domain.model import (
    AuditFilter,
    AuditPage,
    Decision,
    DecisionResult,
    ReviewFilter,
    ReviewPage,
    SortKey,
)
from spendsense_shared.messagebus import Command, Query


@dataclass(frozen=True)
class Decide(Command[DecisionResult]):
    """Approve, reject or flag (for a second review) recommendations: by id, or every open item of one
    user (``user_id``). All or nothing: raises RecommendationsNotFound or ConsentRequired and changes
    nothing."""

    decision: Decision
    operator_id: str
    recommendation_ids: tuple[str, ...] = ()
    user_id: str | None = None
    reason: str | None = None


@dataclass(frozen=True)
class ListReview(Query[ReviewPage]):
    filter: ReviewFilter
    sort: SortKey
    limit: int
    after: dict[str, object] | None = None


@dataclass(frozen=True)
class ListAudit(Query[AuditPage]):
    """Newest first; ``limit`` None: every entry (the CSV export)."""

    filter: AuditFilter
    limit: int | None
    after: int | None = None
