"""``/api/v1/consent`` against real PostgreSQL: rules, authorization, history and the outbox."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import select

from spendsense_profile.adapters.orm import consents, messaging
from spendsense_profile.bootstrap import SERVICE


@pytest.fixture
async def profile(service_client):
    return await service_client(SERVICE)


async def outbox_types(client) -> list[tuple[str, str | None]]:
    async with client.platform.database.engine.connect() as conn:
        rows = (await conn.execute(select(messaging.outbox.c.payload).order_by(messaging.outbox.c.seq))).all()
    return [(r.payload["type"], r.payload["correlation_id"]) for r in rows]


async def stored_consents(client) -> int:
    async with client.platform.database.engine.connect() as conn:
        return len((await conn.execute(select(consents))).all())


async def test_a_user_grants_consent_and_the_event_is_in_the_outbox_with_the_correlation_id(profile):
    response = await profile.post(
        "/api/v1/consent", json={"user_id": "u1"}, headers={**profile.as_("u1"), "X-Correlation-ID": "corr-1"}
    )
    assert response.status_code == 201, response.text
    body = response.json()
    assert body["status"] == "granted"
    assert body["policy_version"] == "2026-01"
    assert set(body["scopes"]) == {"analysis", "recommendations", "operator_review"}
    assert await outbox_types(profile) == [("consent.granted", "corr-1")]


async def test_the_same_grant_again_returns_the_current_consent_and_announces_nothing(profile):
    headers = profile.as_("u1")
    first = await profile.post("/api/v1/consent", json={"user_id": "u1"}, headers=headers)
    again = await profile.post("/api/v1/consent", json={"user_id": "u1"}, headers=headers)
    other = await profile.post(
        "/api/v1/consent", json={"user_id": "u1", "scopes": ["analysis"]}, headers=headers
    )

    assert again.status_code == 201, again.text
    assert again.json()["consent_id"] == first.json()["consent_id"]
    assert other.json()["consent_id"] != first.json()["consent_id"]  # other scopes: a new grant
    assert await stored_consents(profile) == 2
    assert [t for t, _ in await outbox_types(profile)] == ["consent.granted", "consent.granted"]


async def test_grants_and_revocations_at_once_leave_one_current_consent_and_no_500(profile):
    """Found under load: two grants at once both found no current consent and both inserted one (500)."""
    headers = profile.as_("u1")
    requests = [profile.post("/api/v1/consent", json={"user_id": "u1"}, headers=headers) for _ in range(8)]
    requests += [profile.delete("/api/v1/consent/u1", headers=headers) for _ in range(4)]
    answers = await asyncio.gather(*requests)
    assert all(a.status_code < 500 for a in answers), [a.text for a in answers if a.status_code >= 500]
    async with profile.platform.database.engine.connect() as conn:
        current = (await conn.execute(select(consents).where(consents.c.revoked_at.is_(None)))).all()
    assert len(current) <= 1
    assert sum(a.status_code == 201 for a in answers) == 8


async def test_nobody_grants_consent_for_someone_else(profile):
    response = await profile.post(
        "/api/v1/consent", json={"user_id": "u2"}, headers=profile.as_("u1", "admin")
    )
    assert response.status_code == 403
    assert response.json()["error"]["code"] == "forbidden"
    assert await stored_consents(profile) == 0
    assert await outbox_types(profile) == []


@pytest.mark.parametrize(
    ("body", "code", "field"),
    [
        ({"user_id": "u1", "scopes": ["analysis", "selling_data"]}, "invalid_scope", "selling_data"),
        ({"user_id": "u1", "scopes": ["recommendations"]}, "invalid_scope", "analysis"),
        ({"user_id": "u1", "colour": "blue"}, "validation_error", "colour"),
        ({"user_id": ""}, "validation_error", "user_id"),
        ({}, "validation_error", "user_id"),
    ],
)
async def test_bad_consent_requests_get_a_precise_error_and_change_nothing(profile, body, code, field):
    response = await profile.post("/api/v1/consent", json=body, headers=profile.as_("u1"))
    assert response.status_code == 422
    error = response.json()["error"]
    assert error["code"] == code
    assert field in error["message"]
    assert await stored_consents(profile) == 0
    assert await outbox_types(profile) == []


async def test_history_keeps_every_grant_and_revocation(profile):
    headers = profile.as_("u1")
    await profile.post(
        "/api/v1/consent", json={"user_id": "u1", "policy_version": "2025-06"}, headers=headers
    )
    await profile.post("/api/v1/consent", json={"user_id": "u1"}, headers=headers)
    status = (await profile.get("/api/v1/consent/u1", headers=headers)).json()
    assert status["current"]["policy_version"] == "2026-01"
    assert [c["status"] for c in status["history"]] == ["granted", "revoked"]

    revoked = await profile.delete("/api/v1/consent/u1", headers=headers)
    assert revoked.status_code == 200
    assert revoked.json()["revoked_at"] is not None
    again = await profile.delete("/api/v1/consent/u1", headers=headers)
    assert again.status_code == 404
    assert again.json()["error"]["code"] == "no_current_consent"
    status = (await profile.get("/api/v1/consent/u1", headers=headers)).json()
    assert status["current"] is None
    assert len(status["history"]) == 2
    assert [t for t, _ in await outbox_types(profile)] == [
        "consent.granted",
        "consent.granted",
        "consent.revoked",
    ]


@pytest.mark.parametrize(
    ("method", "actor", "roles", "expected"),
    [
        ("GET", None, (), 401),
        ("GET", "u1", ("user",), 200),
        ("GET", "u2", ("user",), 403),
        ("GET", "op", ("operator",), 200),
        ("DELETE", None, (), 401),
        ("DELETE", "u2", ("user",), 403),
        ("DELETE", "op", ("operator",), 403),
        ("DELETE", "root", ("admin",), 200),
        ("DELETE", "u1", ("user",), 200),
    ],
)
async def test_consent_authorization_matrix(profile, method, actor, roles, expected):
    await profile.post("/api/v1/consent", json={"user_id": "u1"}, headers=profile.as_("u1"))
    headers = profile.as_(actor, *roles) if actor else {}
    response = await profile.request(method, "/api/v1/consent/u1", headers=headers)
    assert response.status_code == expected, response.text
