"""Commands and queries, and the bus that hands each to its one handler (cosmicpython's message bus,
for use cases called from the HTTP layer; events travel through the consumer instead).

A router builds a command (a state change) or a query (a read), awaits ``bus.handle(message)`` and
shapes the answer; ``bootstrap.py`` decides which handler gets each message and with which adapters.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import Any, Generic, TypeVar, cast

Result = TypeVar("Result")


class Message(Generic[Result]):
    """A request for one use case; ``Result`` is what its handler returns."""


class Command(Message[Result]):
    """Changes state (and may publish events)."""


class Query(Message[Result]):
    """Reads state; never writes."""


MessageHandler = Callable[[Any], Awaitable[Any]]


class UnknownMessage(LookupError):
    pass


class MessageBus:
    def __init__(self, handlers: Mapping[type[Message[Any]], MessageHandler]):
        self.handlers = dict(handlers)

    async def handle(self, message: Message[Result]) -> Result:
        handler = self.handlers.get(type(message))
        if handler is None:
            raise UnknownMessage(f"no handler for {type(message).__name__}")
        return cast(Result, await handler(message))
