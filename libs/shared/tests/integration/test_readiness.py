"""/ready of a real service app (the profile service's definition) against the real servers."""

from __future__ import annotations

import asyncio

import httpx
from asgi_lifespan import LifespanManager

from spendsense_profile.bootstrap import SERVICE
from spendsense_shared.aws import Aws
from spendsense_shared.embedded.servers import free_port
from spendsense_shared.messaging.provision import provision
from spendsense_shared.messaging.topology import build_topology
from spendsense_shared.service import build_app


async def get_ready(settings) -> httpx.Response:
    app = build_app(SERVICE, settings)
    async with (
        LifespanManager(app) as manager,
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=manager.app), base_url="http://profile"
        ) as client,
    ):
        return await client.get("/ready")


async def test_ready_when_database_redis_and_bus_are_reachable(migrated, topology, settings_for):
    await migrated(SERVICE)

    response = await get_ready(settings_for(SERVICE))

    assert response.status_code == 200, response.text
    assert response.json() == {
        "status": "ready",
        "service": "profile",
        "checks": {"database": "ok", "redis": "ok", "bus": "ok"},
    }


async def test_not_ready_when_redis_is_unreachable(migrated, topology, settings_for):
    await migrated(SERVICE)
    closed_port = free_port()

    response = await get_ready(settings_for(SERVICE, redis_url=f"redis://127.0.0.1:{closed_port}/0"))

    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "not_ready"
    assert body["checks"]["redis"].startswith("error:")
    assert body["checks"]["database"] == "ok"
    assert body["checks"]["bus"] == "ok"


async def test_not_ready_when_the_bus_is_not_provisioned(migrated, settings_for):
    await migrated(SERVICE)  # no topology fixture: this env's topic and queue do not exist

    response = await get_ready(settings_for(SERVICE))

    assert response.status_code == 503
    checks = response.json()["checks"]
    assert checks["bus"].startswith("error:")
    assert (checks["database"], checks["redis"]) == ("ok", "ok")


async def test_not_ready_when_the_database_is_unreachable(topology, settings_for):
    closed_port = free_port()

    response = await get_ready(
        settings_for(SERVICE, database_url=f"postgresql+asyncpg://postgres@127.0.0.1:{closed_port}/nowhere")
    )

    assert response.status_code == 503
    checks = response.json()["checks"]
    assert checks["database"].startswith("error:")
    assert (checks["redis"], checks["bus"]) == ("ok", "ok")


async def test_ready_finds_its_topic_beyond_the_first_page_of_topics(migrated, settings_for, isolation_id):
    # SNS lists 100 topics a page: with 100 older topics in the account, ours is on the second page.
    await migrated(SERVICE)
    settings = settings_for(SERVICE)
    aws = Aws(settings)
    async with aws.client("sns") as sns:
        fillers = await asyncio.gather(
            *(sns.create_topic(Name=f"spendsense-{isolation_id}-filler-{i}") for i in range(100))
        )
    try:
        await provision(aws, build_topology(isolation_id))

        response = await get_ready(settings)

        assert response.status_code == 200, response.text
        assert response.json()["checks"]["bus"] == "ok"
    finally:
        async with aws.client("sns") as sns:
            await asyncio.gather(*(sns.delete_topic(TopicArn=f["TopicArn"]) for f in fillers))
