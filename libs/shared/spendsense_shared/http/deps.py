"""FastAPI dependencies whose value ``bootstrap.py`` provides (``build_app`` overrides them), so routers
receive the use cases and adapters the composition root built, never reach into ``app.state``."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends

from spendsense_shared.messagebus import MessageBus


def message_bus() -> MessageBus:
    raise RuntimeError("no message bus is wired into this app")


Bus = Annotated[MessageBus, Depends(message_bus)]
