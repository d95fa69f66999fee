"""The correlation id of the current request or event, carried through logs and every event."""

from __future__ import annotations

import uuid
from contextvars import ContextVar

import structlog

_correlation_id: ContextVar[str | None] = ContextVar("correlation_id", default=None)


def current_correlation_id() -> str | None:
    return _correlation_id.get()


def new_correlation_id() -> str:
    return uuid.uuid4().hex


def bind_correlation_id(value: str | None) -> str:
    """Make ``value`` (or a fresh id) the correlation id of this task and its log lines."""
    correlation_id = value or new_correlation_id()
    _correlation_id.set(correlation_id)
    structlog.contextvars.bind_contextvars(correlation_id=correlation_id)
    return correlation_id
