"""Dead-letter queues as an admin sees them: one per consuming service (``messaging.topology``), its depth
and a peek at its messages with the error the consumer recorded, and the re-drive of its messages back to
the service's queue after a fix. Reading never consumes a message; a re-drive moves at most a bounded
number, each at most once per call."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

PEEK_DEFAULT = 10  # messages shown per queue unless asked otherwise
PEEK_MAX = 50
REDRIVE_DEFAULT = 100  # messages one re-drive moves unless asked otherwise
REDRIVE_MAX = 1000


@dataclass(frozen=True)
class QueueRef:
    """A consuming service's queue and its dead-letter queue (names, as the topology declares them)."""

    service: str
    queue: str
    dlq: str


@dataclass(frozen=True)
class DeadLetterMessage:
    message_id: str
    event_type: str | None  # None: neither the message attributes nor the body name it
    event_id: str | None
    correlation_id: str | None
    error: str | None  # "ErrorType: message", as the consumer recorded it; None: not recorded
    receive_count: int | None  # the receives of the failed delivery
    sent_at: datetime | None  # when it was sent to the DLQ


@dataclass(frozen=True)
class DeadLetterQueue:
    ref: QueueRef
    depth: int  # ApproximateNumberOfMessages of the DLQ (messages being peeked or re-driven not counted)
    messages: list[DeadLetterMessage] = field(default_factory=list)


class UnknownService(LookupError):
    """The service has no queue (it consumes nothing, or does not exist)."""

    def __init__(self, service: str, known: list[str]):
        super().__init__(f"no dead-letter queue for service {service!r}; one of {', '.join(sorted(known))}")
        self.service = service


class QueueUnavailable(RuntimeError):
    """The queue or its DLQ is not provisioned (or cannot be reached)."""

    def __init__(self, service: str, reason: str):
        super().__init__(f"the dead-letter queue of {service!r} is unavailable: {reason}")
        self.service = service


def check_range(name: str, value: int, maximum: int) -> None:
    if not 1 <= value <= maximum:
        raise ValueError(f"{name}: between 1 and {maximum}")


@dataclass(frozen=True)
class EnvelopeFields:
    event_id: str | None = None
    event_type: str | None = None
    correlation_id: str | None = None


def envelope_fields(body: str) -> EnvelopeFields:
    """The event's id, type and correlation id, read leniently from a message body (a dead letter may be
    malformed: whatever cannot be read is None)."""
    try:
        document: Any = json.loads(body)
    except ValueError:
        return EnvelopeFields()
    if not isinstance(document, dict):
        return EnvelopeFields()

    def text(key: str) -> str | None:
        value = document.get(key)
        return value if isinstance(value, str) and value else None

    return EnvelopeFields(text("id"), text("type"), text("correlation_id"))


def error_of(error_type: str, error_message: str) -> str | None:
    """How the consumer's recorded error reads (``KeyError: 'x'``); None when none was recorded."""
    if not error_type:
        return error_message or None
    return f"{error_type}: {error_message}" if error_message and error_message != error_type else error_type
