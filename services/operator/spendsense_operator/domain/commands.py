"""The use cases the operator API calls (commands change state, queries read it)."""

from __future__ import annotations

from dataclasses import dataclass

from spendsense_operator.domain.dead_letters import (
    PEEK_DEFAULT,
    PEEK_MAX,
    REDRIVE_DEFAULT,
    REDRIVE_MAX,
    DeadLetterQueue,
    check_range,
)
from spendsense_operator.domain.model import (
    BULK_APPROVE_MAX,
    AuditFilter,
    AuditPage,
    Decision,
    DecisionResult,
    MatchFilter,
    QueuedItem,
    ReviewFilter,
    ReviewPage,
    SortKey,
)
from spendsense_operator.domain.override import EditedText, OverrideReport
from spendsense_operator.domain.users import UserDetail
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
class ApproveMatching(Command[DecisionResult]):
    """Approve the open (pending or flagged) items matching ``where`` of users whose consent is current,
    oldest first, at most ``limit`` (≤ BULK_APPROVE_MAX); the result says how many still match."""

    where: MatchFilter
    operator_id: str
    limit: int = BULK_APPROVE_MAX

    def __post_init__(self) -> None:
        if not 1 <= self.limit <= BULK_APPROVE_MAX:
            raise ValueError(f"limit: between 1 and {BULK_APPROVE_MAX}")


@dataclass(frozen=True)
class OverrideResult:
    item: QueuedItem  # as it is after the override
    report: OverrideReport


@dataclass(frozen=True)
class Override(Command[OverrideResult]):
    """Put edited text (``text``) or one of the item's alternatives (``catalog_item_id``) in place of a
    recommendation's text. Raises RecommendationsNotFound, ConsentRequired, NotAnAlternative or
    GuardrailsFailed, and then nothing has changed."""

    recommendation_id: str
    operator_id: str
    reason: str
    text: EditedText | None = None
    catalog_item_id: str | None = None


@dataclass(frozen=True)
class CheckOverride(Query[OverrideReport]):
    """The checks an override would run, without saving anything (the override editor's preview)."""

    recommendation_id: str
    text: EditedText | None = None
    catalog_item_id: str | None = None


@dataclass(frozen=True)
class GetUser(Query[UserDetail]):
    """A user's signals, persona history and review items. Raises UserNotFound (nothing known, or
    erased) or ConsentRequired."""

    user_id: str


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


@dataclass(frozen=True)
class ListDeadLetters(Query[list[DeadLetterQueue]]):
    """Every consuming service's dead-letter queue (by service name): its depth and a peek at up to
    ``limit`` messages (≤ PEEK_MAX), none consumed."""

    limit: int = PEEK_DEFAULT

    def __post_init__(self) -> None:
        check_range("limit", self.limit, PEEK_MAX)


@dataclass(frozen=True)
class GetDeadLetters(Query[DeadLetterQueue]):
    """One service's dead-letter queue, as listed. Raises UnknownService or QueueUnavailable."""

    service: str
    limit: int = PEEK_DEFAULT

    def __post_init__(self) -> None:
        check_range("limit", self.limit, PEEK_MAX)


@dataclass(frozen=True)
class RedriveDeadLetters(Command[int]):
    """Move at most ``max_messages`` (≤ REDRIVE_MAX) of a service's dead letters back to its queue, each at
    most once; returns how many moved. Raises UnknownService or QueueUnavailable."""

    service: str
    actor: str
    max_messages: int = REDRIVE_DEFAULT

    def __post_init__(self) -> None:
        check_range("max_messages", self.max_messages, REDRIVE_MAX)
