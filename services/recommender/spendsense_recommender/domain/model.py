"""What the recommender stores and reads back: small read models the repository returns, and the
answers of its queries."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any


@dataclass(frozen=True)
class StoredRecommendation:
    id: str
    kind: str
    item_id: str
    rank: int
    title: str
    body: str
    rationale: str
    disclosure: str
    status: str
    persona: str
    details: dict[str, Any]
    created_at: datetime


@dataclass(frozen=True)
class ShownText:
    """What a recommendation shows the user: its catalog item and text (the generated one, or an
    operator's override stored in its place)."""

    catalog_item_id: str
    catalog_version: str
    title: str
    body: str
    rationale: str
    disclosure: str
    details: dict[str, Any]  # format, partner, product type, url

    def to_dict(self) -> dict[str, Any]:
        return {
            "catalog_item_id": self.catalog_item_id,
            "catalog_version": self.catalog_version,
            "title": self.title,
            "body": self.body,
            "rationale": self.rationale,
            "disclosure": self.disclosure,
            "details": dict(self.details),
        }


@dataclass(frozen=True)
class ReviewTarget:
    """A recommendation as a review finds it: whose it is, its status, what it shows, its sealed trace."""

    recommendation_id: str
    user_id: str
    status: str
    shown: ShownText
    trace: dict[str, Any]


@dataclass(frozen=True)
class ApprovedPosition:
    """Where a page of approved recommendations ends (newest first, then rank, then id)."""

    created_at: datetime
    rank: int
    id: str


@dataclass(frozen=True)
class ApprovedPage:
    items: list[StoredRecommendation]
    next_after: ApprovedPosition | None


@dataclass(frozen=True)
class StoredTrace:
    seq: int
    trace: dict[str, Any]


@dataclass(frozen=True)
class TracePage:
    items: list[dict[str, Any]]
    chain: dict[str, Any]  # the verification of every chain of the user's traces (ChainsVerification)
    next_after: int | None  # the seq the next page starts after


@dataclass(frozen=True)
class TraceCheck:
    trace: dict[str, Any]
    chain: dict[str, Any]
    replay: dict[str, Any]


class RecommendationNotFound(LookupError):
    """Not one of the user's visible (approved or overridden) recommendations."""
