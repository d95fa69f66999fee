"""``GET /profile/{id}`` (the profile exists from registration or first consent; a GET never writes),
the compact mobile profile (ETag), mobile consent and push registration, against real PostgreSQL."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from spendsense_profile.adapters.orm import messaging, profiles, push_devices
from spendsense_profile.adapters.unit_of_work import SqlProfileUnitOfWork
from spendsense_profile.bootstrap import SERVICE
from spendsense_shared.messaging.catalog import UserRegistered, new_event


@pytest.fixture
async def profile(service_client):
    return await service_client(SERVICE)


async def register(client, user_id: str) -> None:
    """Deliver ``user.registered`` to the wired handler, in one unit of work, as the consumer does."""
    data = UserRegistered(user_id=user_id, roles=["user"], registered_via="password")
    envelope = new_event(data, user_id=user_id)
    async with client.platform.database.uow_factory(SqlProfileUnitOfWork)() as uow:
        assert await uow.mark_processed(envelope)
        await SERVICE.bootstrap(client.platform).event_handlers["user.registered"](envelope, data, uow)
        await uow.commit()


async def stored_profiles(client) -> list[str]:
    async with client.platform.database.engine.connect() as conn:
        return [r.user_id for r in await conn.execute(select(profiles.c.user_id))]


async def test_a_registered_user_has_a_profile_that_shows_consent(profile):
    me = profile.as_("u1")
    await register(profile, "u1")
    first = await profile.get("/api/v1/profile/u1", headers=me)
    assert first.status_code == 200, first.text
    assert first.json()["consent"] is None
    assert first.json()["uploads"] == 0
    assert first.json()["latest_upload"] is None
    assert (await profile.post("/api/v1/mobile/consent/u1", json={}, headers=me)).status_code == 201
    body = (await profile.get("/api/v1/profile/u1", headers=me)).json()
    assert body["consent"]["status"] == "granted"
    assert body["created_at"] == first.json()["created_at"]
    async with profile.platform.database.engine.connect() as conn:
        types = [r.event_type for r in await conn.execute(select(messaging.outbox.c.event_type))]
    assert types == ["consent.granted"]


async def test_first_consent_creates_the_profile(profile):
    me = profile.as_("u1")
    assert (await profile.post("/api/v1/consent", json={"user_id": "u1"}, headers=me)).status_code == 201
    body = (await profile.get("/api/v1/profile/u1", headers=me)).json()
    assert body["user_id"] == "u1"
    assert body["consent"]["status"] == "granted"


@pytest.mark.parametrize("path", ["/api/v1/profile/u1", "/api/v1/mobile/profile/u1"])
async def test_reading_a_profile_that_does_not_exist_is_a_404_and_creates_nothing(profile, path):
    response = await profile.get(path, headers=profile.as_("u1"))
    assert response.status_code == 404, response.text
    error = response.json()["error"]
    assert error["code"] == "not_found"
    assert "no profile for u1" in error["message"]
    assert await stored_profiles(profile) == []


@pytest.mark.parametrize(
    ("actor", "roles", "consented", "expected"),
    [
        ("u2", ("user",), True, 403),
        ("op", ("operator",), False, 403),
        ("op", ("operator",), True, 200),
        ("root", ("admin",), False, 403),
    ],
)
async def test_profile_access_matrix(profile, actor, roles, consented, expected):
    await register(profile, "u1")
    if consented:
        await profile.post("/api/v1/consent", json={"user_id": "u1"}, headers=profile.as_("u1"))
    response = await profile.get("/api/v1/profile/u1", headers=profile.as_(actor, *roles))
    assert response.status_code == expected


async def test_mobile_profile_is_compact_and_cached_by_etag(profile):
    me = profile.as_("u1")
    await register(profile, "u1")
    first = await profile.get("/api/v1/mobile/profile/u1", headers=me)
    assert first.json() == {"user_id": "u1", "consent": "none", "latest_upload_status": None}
    assert "max-age" in first.headers["cache-control"]
    again = await profile.get(
        "/api/v1/mobile/profile/u1", headers={**me, "If-None-Match": first.headers["etag"]}
    )
    assert again.status_code == 304
    await profile.post("/api/v1/mobile/consent/u1", json={}, headers=me)
    changed = await profile.get(
        "/api/v1/mobile/profile/u1", headers={**me, "If-None-Match": first.headers["etag"]}
    )
    assert changed.status_code == 200
    assert changed.json()["consent"] == "granted"


async def test_nobody_grants_mobile_consent_for_someone_else(profile):
    response = await profile.post("/api/v1/mobile/consent/u2", json={}, headers=profile.as_("u1"))
    assert response.status_code == 403


async def test_push_registration_stores_the_token_and_validates_it(profile):
    token = "a1b2c3d4e5f6a7b8c9d0" * 3
    ok = await profile.post(
        "/api/v1/mobile/push/register", json={"token": token, "platform": "ios"}, headers=profile.as_("u1")
    )
    assert ok.status_code == 201
    taken = await profile.post(
        "/api/v1/mobile/push/register", json={"token": token, "platform": "ios"}, headers=profile.as_("u2")
    )
    assert taken.status_code == 409  # another account's reachable device: not moved without proof
    assert taken.json()["error"]["code"] == "device_token_in_use"
    async with profile.platform.database.engine.connect() as conn:
        rows = (await conn.execute(select(push_devices.c.user_id))).all()
    assert [r.user_id for r in rows] == ["u1"]
    assert sorted(await stored_profiles(profile)) == ["u1"]  # registering a device ensures a profile
    bad = await profile.post(
        "/api/v1/mobile/push/register",
        json={"token": "short", "platform": "blackberry"},
        headers=profile.as_("u1"),
    )
    assert bad.status_code == 422
    fields = {d["field"] for d in bad.json()["error"]["details"]}
    assert fields == {"token", "platform"}
    anonymous = await profile.post("/api/v1/mobile/push/register", json={"token": token, "platform": "ios"})
    assert anonymous.status_code == 401
