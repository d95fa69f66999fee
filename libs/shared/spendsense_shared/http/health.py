"""Liveness and readiness that a crowd (or a load balancer) cannot turn into load.

Liveness (``/health``) does no I/O. Readiness runs a list of named checks (database, Redis, bus, and
whatever a service adds); its result is kept for a few seconds, and concurrent callers share the one
run in flight, so 50 clients asking at once cost one round of checks, not 50.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import Generic, TypeVar

ReadinessCheck = Callable[[], Awaitable[object]]
T = TypeVar("T")


class SharedResult(Generic[T]):
    """``await get()``: ``compute()``'s last result while it is fresh (``ttl_s``, or ``failure_ttl_s``
    when ``ok(result)`` is false, so recovery shows quickly), else one new run shared by every caller."""

    def __init__(
        self,
        compute: Callable[[], Awaitable[T]],
        *,
        ttl_s: float,
        failure_ttl_s: float,
        ok: Callable[[T], bool],
    ):
        self._compute = compute
        self._ttl_s = ttl_s
        self._failure_ttl_s = failure_ttl_s
        self._ok = ok
        self._value: T | None = None
        self._expires = 0.0
        self._running: asyncio.Future[T] | None = None

    async def get(self) -> T:
        if self._value is not None and time.monotonic() < self._expires:
            return self._value
        running = self._running
        if running is None or running.get_loop() is not asyncio.get_running_loop():
            running = self._running = asyncio.ensure_future(self._refresh())
        # shield: a caller that gives up (its client went away) does not cancel the others' run
        return await asyncio.shield(running)

    async def _refresh(self) -> T:
        try:
            value = await self._compute()
            fresh_for = self._ttl_s if self._ok(value) else self._failure_ttl_s
            self._value, self._expires = value, time.monotonic() + fresh_for
            return value
        finally:
            self._running = None


async def run_checks(checks: Mapping[str, ReadinessCheck], timeout_s: float) -> dict[str, str]:
    """Every check at once: ``"ok"`` or why not, by name."""

    async def probe(check: ReadinessCheck) -> str:
        try:
            await asyncio.wait_for(check(), timeout=timeout_s)
            return "ok"
        except Exception as exc:
            return f"error: {type(exc).__name__}: {exc}"[:200]

    results = await asyncio.gather(*(probe(c) for c in checks.values()))
    return dict(zip(checks, results, strict=True))


def readiness(
    checks: Mapping[str, ReadinessCheck], *, ttl_s: float, timeout_s: float = 3.0
) -> SharedResult[dict[str, str]]:
    """The service's readiness: its checks' results, shared and kept ``ttl_s`` (a failure ≤ 0.5 s)."""
    return SharedResult(
        lambda: run_checks(checks, timeout_s),
        ttl_s=ttl_s,
        failure_ttl_s=min(ttl_s, 0.5),
        ok=lambda results: all(v == "ok" for v in results.values()),
    )
