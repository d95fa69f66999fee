"""The fixed-window limiter on real Redis: the Retry-After it answers is long enough to be waited once."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from spendsense_shared.cache import Cache
from spendsense_shared.ratelimit import FixedWindowLimiter


@pytest.fixture
async def limiter(infra, isolation_id) -> AsyncIterator[FixedWindowLimiter]:
    cache = Cache(infra.redis_url, "auth", isolation_id)
    yield FixedWindowLimiter(cache)
    keys = [k async for k in cache.client.scan_iter(match=f"{cache.prefix}*")]
    if keys:
        await cache.client.delete(*keys)
    await cache.close()


async def test_hits_within_the_limit_pass_and_the_next_one_is_told_the_seconds_left(limiter):
    assert [await limiter.hit("login", "a@example.com", 3, 60) for _ in range(3)] == [None] * 3

    assert await limiter.hit("login", "a@example.com", 3, 60) == 60
    assert await limiter.hit("login", "b@example.com", 3, 60) is None  # another key, its own window


async def test_waiting_the_retry_after_once_is_always_enough(limiter):
    # 0.7 s into a 2 s window, 1.3 s are left: rounded to the nearest second that is 1 s, and a client
    # that waits 1 s comes back inside the window.
    assert await limiter.hit("login", "c@example.com", 1, 2) is None
    await asyncio.sleep(0.7)
    wait_s = await limiter.hit("login", "c@example.com", 1, 2)
    assert wait_s is not None

    await asyncio.sleep(wait_s)

    assert await limiter.hit("login", "c@example.com", 1, 2) is None
