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
    """Not one of the user's approved recommendations."""
