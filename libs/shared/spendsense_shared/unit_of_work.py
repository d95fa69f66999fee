"""The unit of work every handler talks to (cosmicpython's pattern), free of any I/O library.

A unit of work is one transaction: the repositories a service declares on its subclass, the events its
handlers publish (written to the outbox in the same transaction, so they exist if and only if the state
change committed) and the inbox record that makes a redelivered event change nothing. The SQL
implementation is :class:`spendsense_shared.db.SqlUnitOfWork`; tests use
:class:`spendsense_shared.testing.fakes.FakeUnitOfWork`.
"""

from __future__ import annotations

import abc
from collections.abc import Awaitable, Callable
from types import TracebackType
from typing import Any, Self

from spendsense_shared.messaging.catalog import EventData
from spendsense_shared.messaging.envelope import EventEnvelope


class AbstractUnitOfWork(abc.ABC):
    """Enter it, use its repositories, ``publish`` events, ``commit``. Leaving without a commit rolls back."""

    def __init__(self) -> None:
        self.pending_events: list[EventEnvelope] = []

    async def __aenter__(self) -> Self:
        self.pending_events = []
        await self._begin()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.rollback()  # nothing to undo after a commit
        await self._end()

    def publish(self, event: EventEnvelope) -> None:
        """Send ``event`` if, and only if, this transaction commits."""
        self.pending_events.append(event)

    async def commit(self) -> None:
        await self._commit(self.pending_events)
        self.pending_events = []

    async def rollback(self) -> None:
        self.pending_events = []
        await self._rollback()

    @abc.abstractmethod
    async def forget_published(self, user_id: str) -> int:
        """Delete the already published outbox events that mention ``user_id`` (an erasure); unpublished
        ones stay until the relay sends them. Returns how many were deleted."""

    @abc.abstractmethod
    async def forget_published_of(self, subject: str) -> int:
        """Delete the already published outbox events about the user whose pseudonym is ``subject`` (the
        envelope's user id hashes to it): once an erasure is complete, the erasure's own announcements
        and any event sent while it was under way. Returns how many were deleted."""

    @abc.abstractmethod
    async def mark_processed(self, event: EventEnvelope) -> bool:
        """Record the event as handled in this transaction; False when it already was (a redelivery)."""

    @abc.abstractmethod
    async def _begin(self) -> None: ...

    @abc.abstractmethod
    async def _commit(self, events: list[EventEnvelope]) -> None: ...

    @abc.abstractmethod
    async def _rollback(self) -> None: ...

    async def _end(self) -> None:
        return None


UnitOfWorkFactory = Callable[[], AbstractUnitOfWork]

# An event consumer's handler: the consumer has entered ``uow`` and recorded the event in its inbox;
# it commits after the handler returns, so the handler's effects and the inbox record are one transaction.
EventHandler = Callable[[EventEnvelope, EventData, Any], Awaitable[None]]
