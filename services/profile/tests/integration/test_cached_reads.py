"""Hot reads from the API's read cache, through the routes, on real PostgreSQL: a repeated read is
answered from memory, a write of this process is visible to the very next read, a write of another
process (a worker, another replica) soon after, and nobody is answered with what another principal was
shown."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest
from sqlalchemy import text

from spendsense_profile.bootstrap import SERVICE
from spendsense_shared.db import asyncpg_dsn
from spendsense_shared.service import build_app
from spendsense_shared.user_changes import UserChangeListener


@pytest.fixture
async def profile(service_client) -> AsyncIterator:
    client = await service_client(SERVICE)
    platform = client.platform
    dsn = asyncpg_dsn(platform.settings.database_url.get_secret_value())
    listener = UserChangeListener(dsn, platform.database.schema, platform.read_cache)
    await listener.start()  # what the app's lifespan does in a running service
    platform.database.commit_watcher = listener
    yield client
    await listener.stop()


async def test_a_repeated_read_is_answered_from_memory_with_the_same_etag(profile):
    headers = profile.as_("u1")
    await profile.post("/api/v1/consent", json={"user_id": "u1"}, headers=headers)
    cache = profile.platform.read_cache
    first = await profile.get("/api/v1/consent/u1", headers=headers)
    hits = cache.hits
    second = await profile.get("/api/v1/consent/u1", headers=headers)
    assert cache.hits > hits
    assert second.content == first.content
    assert second.headers["etag"] == first.headers["etag"]
    unchanged = await profile.get(
        "/api/v1/consent/u1", headers={**headers, "If-None-Match": first.headers["etag"]}
    )
    assert unchanged.status_code == 304


async def test_this_process_writes_are_seen_by_the_next_read(profile):
    headers = profile.as_("u1")
    await profile.post("/api/v1/consent", json={"user_id": "u1"}, headers=headers)
    assert (await profile.get("/api/v1/consent/u1", headers=headers)).json()["current"] is not None
    assert (await profile.get("/api/v1/profile/u1", headers=headers)).status_code == 200
    assert (await profile.delete("/api/v1/consent/u1", headers=headers)).status_code == 200
    assert (await profile.get("/api/v1/consent/u1", headers=headers)).json()["current"] is None
    assert (await profile.get("/api/v1/profile/u1", headers=headers)).json()["consent"] is None


async def test_another_process_write_is_seen_soon_after(profile):
    headers = profile.as_("u1")
    await profile.post(
        "/api/v1/consent", json={"user_id": "u1", "policy_version": "2025-06"}, headers=headers
    )
    before = (await profile.get("/api/v1/consent/u1", headers=headers)).json()
    assert before["current"]["policy_version"] == "2025-06"
    async with profile.platform.database.engine.begin() as conn:  # not through this app: a worker's write
        await conn.execute(text("UPDATE consents SET policy_version = '2026-01' WHERE user_id = 'u1'"))
    for _ in range(100):
        now = (await profile.get("/api/v1/consent/u1", headers=headers)).json()
        if now["current"]["policy_version"] == "2026-01":
            return
        await asyncio.sleep(0.05)
    raise AssertionError("the cached consent outlived the change")


async def test_no_principal_is_answered_with_what_another_was_shown(profile):
    await profile.post("/api/v1/consent", json={"user_id": "u1"}, headers=profile.as_("u1"))
    assert (await profile.get("/api/v1/consent/u1", headers=profile.as_("u1"))).status_code == 200
    assert (await profile.get("/api/v1/consent/u1", headers=profile.as_("u2"))).status_code == 403
    operator = await profile.get("/api/v1/consent/u1", headers=profile.as_("op", "operator"))
    assert operator.status_code == 200
    keys = {k for entries in profile.platform.read_cache._entries.values() for k in entries}
    assert any(k.startswith("u1|user|") for k in keys)
    assert any(k.startswith("op|operator|") for k in keys)


@pytest.mark.parametrize("enabled", [True, False])
async def test_the_running_app_listens_unless_the_read_cache_is_switched_off(
    migrated, token_verifier, enabled
):
    settings = await migrated(SERVICE, read_cache=enabled)
    app = build_app(SERVICE, settings, token_verifier=token_verifier)
    platform = app.state.platform
    async with app.router.lifespan_context(app):  # what uvicorn runs around serving
        assert platform.read_cache.listening is enabled
        assert (platform.database.commit_watcher is not None) is enabled
    assert not platform.read_cache.listening
