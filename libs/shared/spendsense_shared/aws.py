"""aioboto3 clients configured from settings (real AWS, or the emulator when an endpoint is set)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from typing import Any

import aioboto3
from aiobotocore.config import AioConfig

from spendsense_shared.settings import ServiceSettings


class Aws:
    """One aioboto3 session per process; ``client(name)`` is an async context manager.

    With ``keep_clients`` (a service process's platform), each kind of client is made once per event loop
    and kept until :meth:`close`: making one costs far more than a small call (a new connection pool and
    TLS context: ~20 ms of CPU, against ~2 ms for a PUT to the emulator), and a long-lived client keeps
    its connections alive between calls. Otherwise every ``client()`` is a new client, closed on exit."""

    def __init__(self, settings: ServiceSettings, *, keep_clients: bool = False):
        self.settings = settings
        self.keep_clients = keep_clients
        self._kept: dict[tuple[str, asyncio.AbstractEventLoop], tuple[AsyncExitStack, Any]] = {}
        self.session = aioboto3.Session(
            aws_access_key_id=settings.aws_access_key_id.get_secret_value()
            if settings.aws_access_key_id
            else None,
            aws_secret_access_key=(
                settings.aws_secret_access_key.get_secret_value() if settings.aws_secret_access_key else None
            ),
            region_name=settings.aws_region,
        )
        self._config = AioConfig(retries={"max_attempts": 3, "mode": "standard"}, max_pool_connections=50)

    def client(self, name: str) -> Any:
        if self.keep_clients:
            return self._kept_client(name)
        return self._new_client(name)

    def _new_client(self, name: str) -> Any:
        return self.session.client(name, endpoint_url=self.settings.aws_endpoint_url, config=self._config)

    @asynccontextmanager
    async def _kept_client(self, name: str) -> AsyncIterator[Any]:
        yield await self._kept_for(name)

    async def _kept_for(self, name: str) -> Any:
        loop = asyncio.get_running_loop()
        kept = self._kept.get((name, loop))
        if kept is not None:
            return kept[1]
        stack = AsyncExitStack()
        client = await stack.enter_async_context(self._new_client(name))
        kept = self._kept.setdefault((name, loop), (stack, client))
        if kept[1] is not client:  # another task made one meanwhile: use theirs
            await stack.aclose()
        return kept[1]

    async def close(self) -> None:
        """Close the clients kept for the running loop (and forget those of loops that are closed)."""
        loop = asyncio.get_running_loop()
        for key, (stack, _) in list(self._kept.items()):
            if key[1] is loop:
                del self._kept[key]
                await stack.aclose()
            elif key[1].is_closed():
                del self._kept[key]
