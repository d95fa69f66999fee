"""Stuck work found and finished: each service's worker runs its reconcile steps periodically.

A step compares the service's own state with what should have followed it (an upload ingested whose
users were never analyzed, …) and publishes again, from the service's own tables, the event that
should have made it follow; it returns how many items it acted on. Delivery is at-least-once and every
consumer is idempotent (the inbox, and handlers that skip what they have done already), so publishing
again is always safe: it finishes what an outage, a lost message or an emulator restart left half-done.

One pass at a time across the service's workers (a PostgreSQL advisory lock); a failing step is logged
and tried again at the next pass, never the worker's end.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import time
from collections.abc import Awaitable, Callable, Mapping

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from spendsense_shared.logging import get_logger
from spendsense_shared.messaging.transient import is_transient

log = get_logger(__name__)

ReconcileStep = Callable[[], Awaitable[int]]
FIRST_PASS_S = 5.0  # the first pass soon after start (a restart is when stuck work is likeliest)


def _lock_key(service: str) -> int:
    return int.from_bytes(hashlib.sha256(f"reconcile:{service}".encode()).digest()[:8], "big", signed=True)


class Reconciler:
    def __init__(
        self,
        service: str,
        steps: Mapping[str, ReconcileStep],
        engine: AsyncEngine,
        *,
        interval_s: float,
        first_pass_s: float = FIRST_PASS_S,
    ):
        self.service = service
        self.steps = steps
        self.engine = engine
        self.interval_s = interval_s
        self.first_pass_s = min(first_pass_s, interval_s)
        self._stopping = asyncio.Event()

    async def run_once(self) -> dict[str, int] | None:
        """One pass of every step; what each acted on. None when another worker holds the pass."""
        async with self.engine.connect() as conn:
            key = _lock_key(self.service)
            if not await conn.scalar(text("SELECT pg_try_advisory_lock(:key)"), {"key": key}):
                return None
            try:
                done: dict[str, int] = {}
                for name, step in self.steps.items():
                    done[name] = await self._step(name, step)
                return done
            finally:
                with contextlib.suppress(Exception):
                    await conn.scalar(text("SELECT pg_advisory_unlock(:key)"), {"key": key})

    async def _step(self, name: str, step: ReconcileStep) -> int:
        started = time.monotonic()
        try:
            count = await step()
        except Exception as exc:
            if is_transient(exc):
                log.warning("reconcile_step_failed", step=name, error=f"{type(exc).__name__}: {exc}"[:300])
            else:
                log.exception("reconcile_step_failed", step=name)
            return 0
        if count:
            log.info("reconciled", step=name, items=count, seconds=round(time.monotonic() - started, 2))
        return count

    async def run(self) -> None:
        delay = self.first_pass_s
        while not self._stopping.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stopping.wait(), delay)
            if self._stopping.is_set():
                return
            try:
                await self.run_once()
            except Exception as exc:  # PostgreSQL down: the next pass tries again
                log.warning("reconcile_failed", error=f"{type(exc).__name__}: {exc}"[:300])
            delay = self.interval_s

    def stop(self) -> None:
        self._stopping.set()
