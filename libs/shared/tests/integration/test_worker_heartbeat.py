"""The worker's heartbeat in real Redis: written while the worker's loops run, not while they do not,
removed when the worker stops; the readiness check reads it."""

from __future__ import annotations

import asyncio

import pytest
import redis.asyncio as aioredis

from spendsense_shared.messaging.heartbeat import Heartbeat, check_worker_heartbeat


async def test_the_heartbeat_says_whether_the_worker_runs(infra, isolation_id):
    running = True
    heartbeat = Heartbeat(infra.redis_url, isolation_id, "features", ttl_s=2, alive=lambda: running)
    client = aioredis.from_url(infra.redis_url)
    try:
        with pytest.raises(RuntimeError, match="no heartbeat from features-worker"):
            await check_worker_heartbeat(client, isolation_id, "features")

        task = asyncio.create_task(heartbeat.run())
        await asyncio.sleep(0.2)
        await check_worker_heartbeat(client, isolation_id, "features")  # beating

        running = False  # e.g. its consumer stopped polling: no more beats, the key expires
        await asyncio.sleep(2.5)
        with pytest.raises(RuntimeError):
            await check_worker_heartbeat(client, isolation_id, "features")

        running = True
        await asyncio.sleep(0.8)
        await check_worker_heartbeat(client, isolation_id, "features")
        heartbeat.stop()
        await asyncio.wait_for(task, 5)
        with pytest.raises(RuntimeError):  # a stopped worker is not ready at once
            await check_worker_heartbeat(client, isolation_id, "features")
    finally:
        await client.aclose()
