"""A worker's heartbeat: a Redis key with a time to live, written while the worker's loops run.

The service's API reads it for ``/ready`` (when ``worker_heartbeat_required``): a worker that died (or
whose consumer stopped polling) lets the key expire, and the service, then the gateway's health, report
not ready. Redis being down is reported by the ``redis`` check already; the heartbeat is written again
within one interval of Redis coming back.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import time
from collections.abc import Callable
from typing import Any

import redis.asyncio as aioredis

from spendsense_shared.logging import get_logger

log = get_logger(__name__)


def heartbeat_key(env: str, service: str) -> str:
    return f"spendsense:{env}:heartbeat:{service}-worker"


class Heartbeat:
    """Writes ``heartbeat_key`` every ``ttl_s / 4`` seconds while ``alive()`` says the loops run."""

    def __init__(self, redis_url: str, env: str, service: str, ttl_s: int, alive: Callable[[], bool]):
        self.client: aioredis.Redis = aioredis.from_url(redis_url, socket_timeout=2, socket_connect_timeout=2)
        self.key = heartbeat_key(env, service)
        self.ttl_s = ttl_s
        self.alive = alive
        self._stopping = asyncio.Event()

    async def beat(self) -> bool:
        if not self.alive():
            return False
        value = json.dumps({"pid": os.getpid(), "at": time.time()})
        await self.client.set(self.key, value, ex=self.ttl_s)
        return True

    async def run(self) -> None:
        interval = max(0.5, self.ttl_s / 4)
        failing = False
        try:
            while not self._stopping.is_set():
                try:
                    await self.beat()
                    if failing:
                        log.info("heartbeat_restored")
                    failing = False
                except Exception as exc:  # Redis down: beat again next time
                    if not failing:
                        log.warning("heartbeat_failed", error=f"{type(exc).__name__}: {exc}"[:200])
                    failing = True
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._stopping.wait(), interval)
        finally:
            with contextlib.suppress(Exception):
                await self.client.delete(self.key)  # a worker stopping is not ready at once
            await self.client.aclose()

    def stop(self) -> None:
        self._stopping.set()


async def check_worker_heartbeat(client: Any, env: str, service: str) -> None:
    """Raise unless the service's worker has written its heartbeat within its time to live."""
    if not await client.exists(heartbeat_key(env, service)):
        raise RuntimeError(f"no heartbeat from {service}-worker")
