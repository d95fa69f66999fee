"""What the security tests share: a real HTTP server around an app (uvicorn, in the test's event loop, so
the app's database pool stays on its loop), consent granted the way a service learns it (its own event
handler), and hand-made cursors.

Loaded by path (``load_beside``): under pytest's importlib mode the tests are not an importable package.
"""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any

import uvicorn

from spendsense_shared.embedded.servers import free_port
from spendsense_shared.messaging.catalog import ConsentGranted, new_event, parse_data
from spendsense_shared.service import ServiceDefinition
from spendsense_shared.testing.plugin import ServiceClient


@asynccontextmanager
async def serving(app: Any) -> AsyncIterator[str]:
    """``app`` behind uvicorn on a free port; yields its base URL."""
    port = free_port()
    config = uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="off")
    server = uvicorn.Server(config)
    task = asyncio.create_task(server.serve())
    for _ in range(1000):
        if server.started or task.done():
            break
        await asyncio.sleep(0.01)
    if not server.started:
        task.result() if task.done() else task.cancel()
        raise RuntimeError("the server did not start")
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task


async def grant_consent(client: ServiceClient, definition: ServiceDefinition, user_id: str) -> None:
    """The service's consent projection learns of ``user_id``'s consent (its own handler, one unit of
    work, as its consumer would deliver ``consent.granted``)."""
    wiring = definition.bootstrap(client.platform)
    event = new_event(
        ConsentGranted(
            user_id=user_id,
            consent_id=f"c-{user_id}",
            policy_version="1",
            scopes=["analysis"],
            granted_at=datetime.now(UTC),
        ),
        user_id=user_id,
    )
    async with wiring.unit_of_work() as uow:
        await wiring.event_handlers[event.type](event, parse_data(event), uow)
        await uow.commit()


def cursor(position: Any) -> str:
    """A cursor made by hand: any JSON value, encoded as the API encodes its own."""
    return base64.urlsafe_b64encode(json.dumps(position).encode()).decode().rstrip("=")
