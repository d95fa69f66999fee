"""``/api/v1/admin/dead-letters``: every consuming service's dead-letter queue — its depth and a peek at its
messages with the error the consumer recorded, none consumed — and the re-drive of a queue's messages back
to the service's queue after a fix. Admins only. A re-drive is logged (``dead_letters_redriven``), not
written to the audit log, whose entries are decisions on recommendations."""

from __future__ import annotations

from datetime import datetime

from fastapi import APIRouter, Depends, Query
from pydantic import BaseModel, ConfigDict, Field

from spendsense_operator.domain.commands import GetDeadLetters, ListDeadLetters, RedriveDeadLetters
from spendsense_operator.domain.dead_letters import (
    PEEK_DEFAULT,
    PEEK_MAX,
    REDRIVE_DEFAULT,
    REDRIVE_MAX,
    DeadLetterMessage,
    DeadLetterQueue,
    QueueUnavailable,
    UnknownService,
)
from spendsense_shared.http.deps import Bus
from spendsense_shared.http.errors import ApiError
from spendsense_shared.security import Principal, Role, require_role

router = APIRouter(prefix="/api/v1/admin/dead-letters", tags=["dead letters"])
Admin = Depends(require_role(Role.admin))
Limit = Query(PEEK_DEFAULT, ge=1, le=PEEK_MAX, description="Messages shown per queue (none consumed)")


class DeadLetterOut(BaseModel):
    message_id: str = Field(description="The SQS message id in the DLQ")
    event_type: str | None
    event_id: str | None
    error: str | None = Field(description="The recorded error, 'ErrorType: message'; null: none recorded")
    receive_count: int | None = Field(description="Receives of the failed delivery, as recorded")
    sent_at: datetime | None = Field(description="When it was sent to the DLQ")
    correlation_id: str | None = None

    @classmethod
    def of(cls, m: DeadLetterMessage) -> DeadLetterOut:
        return cls(
            message_id=m.message_id,
            event_type=m.event_type,
            event_id=m.event_id,
            error=m.error,
            receive_count=m.receive_count,
            sent_at=m.sent_at,
            correlation_id=m.correlation_id,
        )


class DeadLetterQueueOut(BaseModel):
    service: str
    queue: str
    dlq: str
    depth: int = Field(description="ApproximateNumberOfMessages of the DLQ")
    messages: list[DeadLetterOut] = Field(description="A peek at up to `limit` messages, none consumed")

    @classmethod
    def of(cls, q: DeadLetterQueue) -> DeadLetterQueueOut:
        return cls(
            service=q.ref.service,
            queue=q.ref.queue,
            dlq=q.ref.dlq,
            depth=q.depth,
            messages=[DeadLetterOut.of(m) for m in q.messages],
        )


class DeadLetterQueuesOut(BaseModel):
    queues: list[DeadLetterQueueOut]


class RedriveIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    max_messages: int = Field(REDRIVE_DEFAULT, ge=1, le=REDRIVE_MAX, description="Move at most this many")


class RedriveOut(BaseModel):
    moved: int


def _refused(exc: Exception) -> ApiError:
    if isinstance(exc, UnknownService):
        return ApiError(404, "not_found", str(exc))
    return ApiError(503, "queue_unavailable", str(exc))


@router.get(
    "",
    response_model=DeadLetterQueuesOut,
    summary="Every consuming service's dead-letter queue: depth and a peek at its messages (admins)",
)
async def list_dead_letters(bus: Bus, limit: int = Limit, _: Principal = Admin) -> DeadLetterQueuesOut:
    try:
        queues = await bus.handle(ListDeadLetters(limit=limit))
    except QueueUnavailable as exc:
        raise _refused(exc) from exc
    return DeadLetterQueuesOut(queues=[DeadLetterQueueOut.of(q) for q in queues])


@router.get(
    "/{service}",
    response_model=DeadLetterQueueOut,
    summary="One service's dead-letter queue: depth and a peek at its messages (admins)",
)
async def get_dead_letters(
    service: str, bus: Bus, limit: int = Limit, _: Principal = Admin
) -> DeadLetterQueueOut:
    try:
        queue = await bus.handle(GetDeadLetters(service=service, limit=limit))
    except (UnknownService, QueueUnavailable) as exc:
        raise _refused(exc) from exc
    return DeadLetterQueueOut.of(queue)


@router.post(
    "/{service}/redrive",
    response_model=RedriveOut,
    summary="Move a service's dead letters back to its queue, at most max_messages, each once (admins)",
)
async def redrive_dead_letters(
    service: str, bus: Bus, body: RedriveIn | None = None, principal: Principal = Admin
) -> RedriveOut:
    max_messages = (body or RedriveIn()).max_messages
    command = RedriveDeadLetters(service=service, actor=principal.user_id, max_messages=max_messages)
    try:
        moved = await bus.handle(command)
    except (UnknownService, QueueUnavailable) as exc:
        raise _refused(exc) from exc
    return RedriveOut(moved=moved)
