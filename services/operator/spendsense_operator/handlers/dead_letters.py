"""Use cases of the admins' dead-letter API: list every consuming service's dead-letter queue (depth and
a peek at its messages, none consumed), show one, and re-drive one's messages back to its queue.

The queues are reached through the :class:`DeadLetterQueues` port (``adapters.dead_letters`` on SQS, an
in-memory fake in the unit tests); which queues exist comes from the bus topology (``bootstrap``).

A re-drive is not written to the audit log: its entries are decisions on one recommendation of one user
(``AuditEntry``), and a re-drive concerns neither. It is logged instead (``dead_letters_redriven``, with
the admin, the service and how many messages moved).
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Protocol

from spendsense_operator.domain.commands import GetDeadLetters, ListDeadLetters, RedriveDeadLetters
from spendsense_operator.domain.dead_letters import (
    DeadLetterMessage,
    DeadLetterQueue,
    QueueRef,
    UnknownService,
)
from spendsense_shared.logging import get_logger

log = get_logger(__name__)


class DeadLetterQueues(Protocol):
    """The dead-letter queues (the port; ``adapters.dead_letters.SqsDeadLetterQueues`` implements it).
    Every method raises ``QueueUnavailable`` when the queue or its DLQ does not exist."""

    async def depth(self, queue: QueueRef) -> int:
        """ApproximateNumberOfMessages of the DLQ."""
        ...

    async def peek(self, queue: QueueRef, limit: int) -> list[DeadLetterMessage]:
        """Up to ``limit`` messages of the DLQ, each once, without consuming them."""
        ...

    async def redrive(self, queue: QueueRef, max_messages: int) -> int:
        """Move at most ``max_messages`` messages of the DLQ back to the queue (each at most once); how
        many moved."""
        ...


def _ref(queues: Mapping[str, QueueRef], service: str) -> QueueRef:
    if service not in queues:
        raise UnknownService(service, list(queues))
    return queues[service]


async def _inspect(dead_letters: DeadLetterQueues, ref: QueueRef, limit: int) -> DeadLetterQueue:
    # The depth first: a peek holds what it reads invisible for a moment, and ApproximateNumberOfMessages
    # counts only visible messages. An empty queue is not peeked (a peek waits a second for messages
    # that are not there); a message that arrived after the depth was read shows at the next look.
    depth = await dead_letters.depth(ref)
    messages = await dead_letters.peek(ref, limit) if depth else []
    return DeadLetterQueue(ref=ref, depth=depth, messages=messages)


async def list_dead_letters(
    query: ListDeadLetters, queues: Mapping[str, QueueRef], dead_letters: DeadLetterQueues
) -> list[DeadLetterQueue]:
    """Every queue, by service name (the queues are read concurrently)."""
    refs = [queues[s] for s in sorted(queues)]
    return list(await asyncio.gather(*(_inspect(dead_letters, ref, query.limit) for ref in refs)))


async def get_dead_letters(
    query: GetDeadLetters, queues: Mapping[str, QueueRef], dead_letters: DeadLetterQueues
) -> DeadLetterQueue:
    """Raises UnknownService or QueueUnavailable."""
    return await _inspect(dead_letters, _ref(queues, query.service), query.limit)


async def redrive_dead_letters(
    cmd: RedriveDeadLetters, queues: Mapping[str, QueueRef], dead_letters: DeadLetterQueues
) -> int:
    """Raises UnknownService or QueueUnavailable; logs every re-drive (see the module's docstring)."""
    ref = _ref(queues, cmd.service)
    moved = await dead_letters.redrive(ref, cmd.max_messages)
    log.info(
        "dead_letters_redriven",
        actor=cmd.actor,
        service=cmd.service,
        queue=ref.queue,
        moved=moved,
        max_messages=cmd.max_messages,
    )
    return moved
