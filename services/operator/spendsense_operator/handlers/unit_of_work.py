"""The operator service's ports: its review queue, its audit log, its projection of the users'
personas and signals, and its consent projection, in one unit of work. SQL implementations:
:mod:`spendsense_operator.adapters.repositories`; in memory: ``tests/unit/fakes.py``."""

from __future__ import annotations

import abc
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from spendsense_operator.domain.model import (
    AuditEntry,
    AuditFilter,
    QueuedItem,
    ReviewFilter,
    SortKey,
    Status,
)
from spendsense_operator.domain.users import PersonaRecord, WindowSignals
from spendsense_shared.consent import ConsentProjectingUnitOfWork
from spendsense_shared.messaging.catalog import OverrideText


class ReviewQueue(abc.ABC):
    @abc.abstractmethod
    async def add(self, items: list[QueuedItem]) -> list[str]:
        """Enqueue items not already queued (by recommendation id); returns the ids added."""

    @abc.abstractmethod
    async def get_many(self, recommendation_ids: list[str]) -> list[QueuedItem]:
        """The queued items among these ids, locked until the end of the transaction."""

    @abc.abstractmethod
    async def open_for_user(self, user_id: str) -> list[QueuedItem]:
        """The user's items still awaiting review (pending or flagged), locked likewise."""

    @abc.abstractmethod
    async def open_matching(self, where: ReviewFilter, limit: int) -> list[QueuedItem]:
        """Open items matching ``where`` (persona, kind) of users whose consent is current, oldest first
        (then by id), at most ``limit``, locked likewise."""

    @abc.abstractmethod
    async def count_open_matching(self, where: ReviewFilter) -> int:
        """How many open items match ``where`` among users whose consent is current."""

    @abc.abstractmethod
    async def find(self, recommendation_id: str) -> QueuedItem | None:
        """One item, not locked (a read)."""

    @abc.abstractmethod
    async def for_user(self, user_id: str, limit: int) -> list[QueuedItem]:
        """The user's items in every status, newest first, at most ``limit``; not locked."""

    @abc.abstractmethod
    async def decide(
        self, recommendation_id: str, status: Status, operator_id: str, reason: str | None, at: datetime
    ) -> None:
        """Record a decision on an item (a flag also marks it flagged, for good)."""

    @abc.abstractmethod
    async def override(
        self, recommendation_id: str, text: OverrideText, operator_id: str, reason: str, at: datetime
    ) -> None:
        """Record an override: status overridden, the replacement text stored beside the original."""

    @abc.abstractmethod
    async def page(
        self, where: ReviewFilter, sort: SortKey, limit: int, after: dict[str, Any] | None
    ) -> list[QueuedItem]:
        """Items matching ``where`` in ``sort`` order (date: newest first; priority: highest first,
        then newest; user: by user id, then oldest first), strictly after ``after``. Only items of users
        whose consent is current: staff see a user's data only while it is."""

    @abc.abstractmethod
    async def counts(self, where: ReviewFilter) -> dict[str, int]:
        """How many items match ``where`` (its status ignored) per status; consented users only."""

    @abc.abstractmethod
    async def merge_user(self, source_user_id: str, target_user_id: str) -> None:
        """The source account was merged into the target: its items become the target's."""

    @abc.abstractmethod
    async def erase_user(self, user_id: str) -> int:
        """Delete every review item of the user (an erasure); how many there were."""


class AuditLog(abc.ABC):
    @abc.abstractmethod
    async def add(self, entries: list[AuditEntry]) -> None: ...

    @abc.abstractmethod
    async def page(self, where: AuditFilter, limit: int | None, after: int | None) -> list[AuditEntry]:
        """Newest first (by seq), strictly before seq ``after``; ``limit`` None: all of them."""

    @abc.abstractmethod
    async def pseudonymize_user(self, user_id: str) -> int:
        """The user was erased: their entries keep the operator's action, but the user id becomes
        :func:`spendsense_shared.erasure.pseudonym` of it and an override's before/after text (which
        cites the user's figures) becomes ``ERASED_TEXT``; how many entries changed."""


Projection = tuple[list[PersonaRecord], list[WindowSignals]]  # one user's history rows and latest signals


class PersonaProjection(abc.ABC):
    """The operator's projection of ``persona.assigned``: every assignment per window (history) and the
    latest signals per window."""

    async def record(self, history: list[PersonaRecord], signals: list[WindowSignals]) -> bool:
        """Add the assignments and keep each window's signals when they are newer than the stored ones
        (:func:`domain.users.newer`). An assignment recorded already (the same event's rows, or the same
        :func:`domain.users.assignment_key` from another event) is left as it is, and when none of
        ``history`` is new its signals are not stored either: the same assignment projected again is a
        no-op. Whether anything was added."""
        return (await self.record_many([(history, signals)]))[0]

    @abc.abstractmethod
    async def record_many(self, projections: Sequence[Projection]) -> list[bool]:
        """:meth:`record` of each (history, signals) pair, as if one after another: whether each added
        anything."""

    @abc.abstractmethod
    async def history(self, user_id: str, limit: int) -> list[PersonaRecord]:
        """The user's assignments, newest first (by assignment time), at most ``limit``."""

    @abc.abstractmethod
    async def signals(self, user_id: str) -> dict[str, WindowSignals]:
        """The user's latest signals by window."""

    @abc.abstractmethod
    async def merge_user(self, source_user_id: str, target_user_id: str) -> None:
        """The source account was merged into the target: its history becomes the target's; per window
        the newer signals stay."""

    @abc.abstractmethod
    async def erase_user(self, user_id: str) -> int:
        """Delete every row of the user (an erasure); how many there were."""


class OperatorUnitOfWork(ConsentProjectingUnitOfWork):
    """Declares the repositories the operator's handlers use."""

    queue: ReviewQueue
    audit: AuditLog
    personas: PersonaProjection
