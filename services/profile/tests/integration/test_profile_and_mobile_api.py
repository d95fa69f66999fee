"""``GET /profile/{id}`` (created on first use), the compact mobile profile (ETag), mobile consent and
push registration, against real PostgreSQL."""

from __future__ import annotations

import httpx
import pytest
from sqlalchemy import select

from spendsense_profile.adapters.orm import messaging, push_devices
from spendsense_profile.bootstrap import SERVICE
from spendsense_shared.service import build_app


@pytest.fixture
async def profile(migrated, token_verifier, mint):
    settings = await migrated("profile")
    app = build_app(SERVICE, settings)
    app.state.token_verifier = token_verifier
    async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://p") as client:
        client.db = app.state.platform.database  # type: ignore[attr-defined]
        client.as_ = lambda user, *roles: {
            "Authorization": f"Bearer {mint(user, roles=list(roles) or ['user'])}"
        }  # type: ignore[attr-defined]
        yield client
    await app.state.platform.close()


async def test_a_profile_exists_on_first_use_and_shows_consent(profile):
    me = profile.as_("u1")
    first = await profile.get("/api/v1/profile/u1", headers=me)
    assert first.status_code == 200, first.text
    assert first.json()["consent"] is None
    assert first.json()["uploads"] == 0
    assert (await profile.post("/api/v1/mobile/consent/u1", json={}, headers=me)).status_code == 201
    body = (await profile.get("/api/v1/profile/u1", headers=me)).json()
    assert body["consent"]["status"] == "granted"
    async with profile.db.engine.connect() as conn:
        types = [r.event_type for r in await conn.execute(select(messaging.outbox.c.event_type))]
    assert types == ["consent.granted"]


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
    await profile.get("/api/v1/profile/u1", headers=profile.as_("u1"))
    if consented:
        await profile.post("/api/v1/consent", json={"user_id": "u1"}, headers=profile.as_("u1"))
    response = await profile.get("/api/v1/profile/u1", headers=profile.as_(actor, *roles))
    assert response.status_code == expected


async def test_mobile_profile_is_compact_and_cached_by_etag(profile):
    me = profile.as_("u1")
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
    moved = await profile.post(
        "/api/v1/mobile/push/register", json={"token": token, "platform": "ios"}, headers=profile.as_("u2")
    )
    assert moved.status_code == 201
    async with profile.db.engine.connect() as conn:
        rows = (await conn.execute(select(push_devices.c.user_id))).all()
    assert [r.user_id for r in rows] == ["u2"]
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
