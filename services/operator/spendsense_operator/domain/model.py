"""The operator's review queue and audit log: what its repositories store and return, and the rules
a decision follows (pure)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from spendsense_shared.messaging.catalog import OverrideText
from spendsense_shared.messaging.contracts import Alternative, CitableFact

Status = Literal["pending", "approved", "rejected", "flagged", "overridden"]
STATUSES: tuple[Status, ...] = ("pending", "approved", "rejected", "flagged", "overridden")
Decision = Literal["approved", "rejected", "flagged"]
SortKey = Literal["date", "priority", "user"]
OPEN_STATUSES: tuple[Status, ...] = ("pending", "flagged")  # what still awaits a (second) review


@dataclass(frozen=True)
class QueuedItem:
    """One recommendation awaiting (or past) review, as the recommender announced it."""

    recommendation_id: str
    user_id: str
    upload_id: str | None
    persona: str
    kind: str
    title: str
    body: str
    rationale: str
    disclosure: str
    catalog_item_id: str
    catalog_version: str
    rank: int
    guardrails: dict[str, bool]
    generator: str
    fell_back_to_template: bool
    priority: int
    created_at: datetime
    status: Status = "pending"
    flagged: bool = False
    decided_by: str | None = None
    decided_at: datetime | None = None
    reason: str | None = None
    # The figures its text may cite and the catalog strings whose digits are content (what an operator's
    # edited text is checked against), and the other catalog items it may be replaced with.
    facts: list[CitableFact] = field(default_factory=list)
    trusted_names: list[str] = field(default_factory=list)
    alternatives: list[Alternative] = field(default_factory=list)
    # The text an operator put in its place (status overridden); the recommender's text stays above.
    override: OverrideText | None = None

    @property
    def guardrails_passed(self) -> bool:
        return all(self.guardrails.values())

    def alternative(self, catalog_item_id: str) -> Alternative | None:
        return next((a for a in self.alternatives if a.catalog_item_id == catalog_item_id), None)

    def shown_text(self) -> dict[str, str]:
        """The text the user would see now: the operator's override, or the recommender's."""
        if self.override is not None:
            return self.override.model_dump()
        return {
            "title": self.title,
            "body": self.body,
            "rationale": self.rationale,
            "disclosure": self.disclosure,
            "catalog_item_id": self.catalog_item_id,
            "catalog_version": self.catalog_version,
        }


def priority_of(kind: str, guardrails: dict[str, bool], fell_back_to_template: bool) -> int:
    """Higher is reviewed sooner: every failed guardrail check weighs most, then a text the model
    could not write (the template stood in), then a partner offer (money is at stake) over education."""
    failed = sum(1 for ok in guardrails.values() if not ok)
    return failed * 10 + (5 if fell_back_to_template else 0) + (3 if kind == "offer" else 0)


@dataclass(frozen=True)
class ReviewFilter:
    user_id: str | None = None
    persona: str | None = None
    kind: str | None = None
    status: Status | None = None
    flagged: bool | None = None


@dataclass(frozen=True)
class ReviewPage:
    items: list[QueuedItem]
    next_after: dict[str, Any] | None  # the position the next page starts after (for the cursor)
    counts: dict[str, int]  # per status, under every filter but the status


def sort_position(item: QueuedItem, sort: SortKey) -> dict[str, Any]:
    """Where ``item`` stands in the ``sort`` order (what a cursor carries)."""
    position: dict[str, Any] = {"t": item.created_at.isoformat(), "id": item.recommendation_id}
    if sort == "priority":
        position["p"] = item.priority
    if sort == "user":
        position["u"] = item.user_id
    return position


@dataclass(frozen=True)
class AuditEntry:
    operator_id: str  # an operator's user id, or policy:<name> for the auto-approval policy
    action: str  # approve, reject, flag, override
    recommendation_id: str
    user_id: str
    before_status: str
    after_status: str
    reason: str | None
    at: datetime
    seq: int | None = None  # assigned when stored
    before: dict[str, Any] | None = None  # an override: the text shown before it
    after: dict[str, Any] | None = None  # an override: the text shown instead (OverrideText)


# What an erased user's override texts become in the audit log (they cite the user's own figures).
ERASED_TEXT: dict[str, Any] = {"erased": True}


@dataclass(frozen=True)
class AuditFilter:
    operator_id: str | None = None
    user_id: str | None = None
    recommendation_id: str | None = None


@dataclass(frozen=True)
class AuditPage:
    items: list[AuditEntry]
    next_after: int | None  # the seq the next page starts after (newest first)


@dataclass(frozen=True)
class DecisionResult:
    decision: Decision
    items: list[QueuedItem] = field(default_factory=list)  # as they are after the decision
    remaining: int | None = None  # a bulk approval by filter: matching open items it left for the next call


ACTION_OF: dict[Decision, str] = {"approved": "approve", "rejected": "reject", "flagged": "flag"}
BULK_APPROVE_MAX = 1000  # items one approval by filter decides; the answer says how many remain


@dataclass(frozen=True)
class MatchFilter:
    """Which open items a bulk approval takes: those of this persona and/or kind (at least one)."""

    persona: str | None = None
    kind: str | None = None

    def __post_init__(self) -> None:
        if self.persona is None and self.kind is None:
            raise ValueError("a bulk approval filter names a persona, a kind, or both")

    def review_filter(self) -> ReviewFilter:
        return ReviewFilter(persona=self.persona, kind=self.kind)


class RecommendationsNotFound(LookupError):
    """Some ids are not in the review queue."""

    def __init__(self, ids: list[str]):
        super().__init__(f"not in the review queue: {', '.join(ids)}")
        self.ids = ids


class UserNotFound(LookupError):
    """The operator knows nothing of this user (or they were erased)."""

    def __init__(self, user_id: str):
        super().__init__(f"the operator knows nothing of user {user_id}")
        self.user_id = user_id


class ConsentRequired(PermissionError):
    """An item's user has no current consent: nobody may decide on it."""

    def __init__(self, user_ids: list[str]):
        super().__init__(f"the user has not given current consent: {', '.join(user_ids)}")
        self.user_ids = user_ids


CSV_UNSAFE_PREFIXES = ("=", "+", "-", "@", "\t", "\r")


def csv_safe(value: object) -> str:
    """A cell a spreadsheet will not evaluate: text starting with = + - @ tab or CR gets a leading
    single quote (OWASP's CSV-injection advice)."""
    text = "" if value is None else str(value)
    return "'" + text if text.startswith(CSV_UNSAFE_PREFIXES) else text
