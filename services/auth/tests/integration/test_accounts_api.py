"""The auth API against real PostgreSQL and Redis: register, login, refresh (rotation and reuse),
logout (refused afterwards by auth and by another service), users, roles, the bootstrap admin,
erasure, rate limits and the JWKS."""

from __future__ import annotations

import json
from typing import Any

import jwt
import pytest
from asgi_lifespan import LifespanManager
from sqlalchemy import func, select

from spendsense_auth.adapters.orm import identities, messaging, refresh_tokens, users
from spendsense_auth.adapters.tokens import JwtTokenIssuer
from spendsense_auth.adapters.unit_of_work import SqlAuthUnitOfWork
from spendsense_auth.bootstrap import SERVICE, event_handlers
from spendsense_auth.domain.accounts import VerifiedIdentity
from spendsense_auth.handlers.identities import link_identity, sign_in_with_identity
from spendsense_profile.bootstrap import SERVICE as PROFILE
from spendsense_shared.erasure import pseudonym
from spendsense_shared.jwk import SigningKey
from spendsense_shared.messaging.catalog import (
    ERASURE_CONFIRMATIONS,
    UserErasureRequested,
    new_event,
    parse_data,
)
from spendsense_shared.testing.plugin import AUDIENCE, ISSUER

PASSWORD = "Vivid-Otter-42-Lamp"


@pytest.fixture
def auth_settings(signing_key):
    """The auth service signs with the test key, so the test verifier trusts its tokens; cheap bcrypt."""
    return {"jwt_private_key": signing_key.pem().decode(), "password_bcrypt_rounds": 4}


@pytest.fixture
async def auth(service_client, auth_settings):
    return await service_client(SERVICE, **auth_settings)


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def register(client, email="jane@example.com", password=PASSWORD, **extra):
    return await client.post("/api/v1/auth/register", json={"email": email, "password": password, **extra})


async def rows(client, table, *where):
    async with client.platform.database.engine.connect() as conn:
        return (await conn.execute(select(table).where(*where))).all()


async def test_register_answers_the_spec_shape_and_announces_the_user(auth, signing_key):
    response = await register(auth, email="Jane@Example.com", username="jane")
    assert response.status_code == 201, response.text
    body = response.json()
    assert set(body) == {"access_token", "refresh_token", "token_type", "expires_in", "user"}
    assert body["token_type"] == "bearer"
    assert body["expires_in"] == 3600
    assert body["user"]["email"] == "jane@example.com"
    assert body["user"]["roles"] == ["user"]
    claims = jwt.decode(
        body["access_token"], signing_key.private_key.public_key(), ["RS256"], audience=AUDIENCE
    )
    assert {"iss", "aud", "exp", "iat", "nbf", "jti", "sub", "roles", "typ", "sid"} <= set(claims)
    assert (claims["iss"], claims["sub"], claims["typ"]) == (ISSUER, body["user"]["id"], "access")
    assert claims["exp"] - claims["iat"] == 3600
    [stored] = await rows(auth, refresh_tokens)
    assert stored.token_hash != body["refresh_token"]
    assert len(stored.token_hash) == 64
    assert (stored.expires_at - stored.issued_at).days == 30
    [user] = await rows(auth, users)
    assert user.password_hash.startswith("$2b$04$")
    assert [r.event_type for r in await rows(auth, messaging.outbox)] == ["user.registered"]
    me = await auth.get(f"/api/v1/users/{body['user']['id']}", headers=bearer(body["access_token"]))
    assert me.status_code == 200
    assert me.json()["username"] == "jane"


async def test_register_refusals(auth):
    weak = await register(auth, password="Password123!!")
    assert weak.status_code == 422
    assert weak.json()["error"]["code"] == "weak_password"
    assert [d["rule"] for d in weak.json()["error"]["details"]] == ["common"]
    assert (await register(auth, email="not-an-email")).status_code == 422
    assert (await register(auth, username="no spaces")).status_code == 422
    assert (await register(auth, username="jane")).status_code == 201
    taken = await register(auth, email="JANE@example.com")
    assert (taken.status_code, taken.json()["error"]["code"]) == (409, "email_taken")
    name = await register(auth, email="other@example.com", username="JANE")
    assert (name.status_code, name.json()["error"]["code"]) == (409, "username_taken")
    assert len(await rows(auth, users)) == 1


async def test_login_by_email_or_username_and_the_same_401_for_unknown_and_wrong(auth):
    await register(auth, username="jane")
    for who in ({"email": "JANE@example.com"}, {"username": "jane"}):
        ok = await auth.post("/api/v1/auth/login", json={**who, "password": PASSWORD})
        assert ok.status_code == 200, ok.text
        assert ok.json()["user"]["email"] == "jane@example.com"
    wrong = await auth.post(
        "/api/v1/auth/login", json={"email": "jane@example.com", "password": "Nope-nope-123!"}
    )
    unknown = await auth.post("/api/v1/auth/login", json={"email": "who@example.com", "password": PASSWORD})
    assert wrong.status_code == unknown.status_code == 401
    assert wrong.json() == unknown.json()
    assert wrong.json()["error"]["code"] == "invalid_credentials"
    both = await auth.post("/api/v1/auth/login", json={"email": "a@b.co", "username": "x", "password": "p"})
    assert both.status_code == 422


async def test_refresh_rotates_and_reuse_revokes_the_family(auth):
    first = (await register(auth)).json()
    second = await auth.post("/api/v1/auth/refresh", json={"refresh_token": first["refresh_token"]})
    assert second.status_code == 200, second.text
    assert second.json()["refresh_token"] != first["refresh_token"]
    reused = await auth.post("/api/v1/auth/refresh", json={"refresh_token": first["refresh_token"]})
    assert (reused.status_code, reused.json()["error"]["code"]) == (401, "token_reused")
    after = await auth.post("/api/v1/auth/refresh", json={"refresh_token": second.json()["refresh_token"]})
    assert (after.status_code, after.json()["error"]["code"]) == (401, "token_revoked")
    assert all(r.revoked_at is not None for r in await rows(auth, refresh_tokens))
    unknown = await auth.post("/api/v1/auth/refresh", json={"refresh_token": "garbage"})
    assert (unknown.status_code, unknown.json()["error"]["code"]) == (401, "invalid_token")


async def test_logout_revokes_the_session_and_every_service_refuses_the_access_token(
    auth, service_client, auth_settings
):
    profile = await service_client(PROFILE)  # same test env, same Redis: the global revocation list
    body = (await register(auth)).json()
    user_id, headers = body["user"]["id"], bearer(body["access_token"])
    assert (await auth.get(f"/api/v1/users/{user_id}", headers=headers)).status_code == 200
    assert (await profile.get(f"/api/v1/consent/{user_id}", headers=headers)).status_code != 401
    out = await auth.post("/api/v1/auth/logout", headers=headers)
    assert out.status_code == 204, out.text
    for client, path in ((auth, f"/api/v1/users/{user_id}"), (profile, f"/api/v1/consent/{user_id}")):
        refused = await client.get(path, headers=headers)
        assert refused.status_code == 401, (client.base_url, refused.text)
        assert "revoked" in refused.json()["error"]["message"]
    again = await auth.post("/api/v1/auth/refresh", json={"refresh_token": body["refresh_token"]})
    assert again.json()["error"]["code"] == "token_revoked"
    assert (await auth.post("/api/v1/auth/logout")).status_code == 401  # a bearer token is required
    # A fresh login works again.
    login = await auth.post("/api/v1/auth/login", json={"email": "jane@example.com", "password": PASSWORD})
    assert (
        await profile.get(f"/api/v1/consent/{user_id}", headers=bearer(login.json()["access_token"]))
    ).status_code != 401


async def test_login_is_rate_limited_with_retry_after(service_client, auth_settings):
    auth = await service_client(SERVICE, **auth_settings, rate_limit_login_per_account=2)
    await register(auth)
    attempt = {"email": "jane@example.com", "password": "Wrong-Password-1"}
    for _ in range(2):
        assert (await auth.post("/api/v1/auth/login", json=attempt)).status_code == 401
    limited = await auth.post("/api/v1/auth/login", json=attempt)
    assert limited.status_code == 429
    assert limited.json()["error"]["code"] == "rate_limited"
    assert 1 <= int(limited.headers["Retry-After"]) <= 60


async def test_per_ip_limits_use_the_forwarded_address_only_behind_a_trusted_proxy(
    service_client, auth_settings
):
    trusted = await service_client(SERVICE, **auth_settings, rate_limit_login_per_ip=1, trust_proxy=True)
    attempt = {"email": "x@example.com", "password": "Wrong-Password-1"}
    for ip in ("203.0.113.1", "203.0.113.2"):
        answer = await trusted.post("/api/v1/auth/login", json=attempt, headers={"X-Forwarded-For": ip})
        assert answer.status_code == 401
    again = await trusted.post(
        "/api/v1/auth/login", json=attempt, headers={"X-Forwarded-For": "203.0.113.1, 10.0.0.1"}
    )
    assert again.status_code == 429


async def test_users_and_roles_with_the_bootstrap_admin(service_client, auth_settings):
    auth = await service_client(
        SERVICE, **auth_settings, admin_email="root@example.com", admin_password="Root-Password-2026!"
    )
    async with LifespanManager(auth.app):  # the startup hook bootstraps the admin (idempotent)
        pass
    async with LifespanManager(auth.app):
        pass
    login = await auth.post(
        "/api/v1/auth/login", json={"email": "root@example.com", "password": "Root-Password-2026!"}
    )
    assert login.status_code == 200, login.text
    root = login.json()["user"]
    assert root["roles"] == ["user", "admin"]
    admin = bearer(login.json()["access_token"])

    created = await auth.post("/api/v1/users", json={"email": "imp@example.com"}, headers=admin)
    assert created.status_code == 201, created.text
    imported = created.json()["id"]
    bare = await auth.post("/api/v1/users", json={}, headers=admin)
    assert bare.status_code == 201
    assert bare.json()["email"] is None
    jane = (await register(auth)).json()
    me = bearer(jane["access_token"])
    assert (await auth.post("/api/v1/users", json={}, headers=me)).status_code == 403

    assert (await auth.get(f"/api/v1/users/{imported}", headers=me)).status_code == 403
    assert (
        await auth.get(f"/api/v1/users/{imported}", headers=auth.as_("ops", "operator"))
    ).status_code == 200
    assert (await auth.get("/api/v1/users/nobody", headers=admin)).status_code == 404

    mine = await auth.put(
        f"/api/v1/users/{jane['user']['id']}", json={"display_name": "Jane D", "username": "jdoe"}, headers=me
    )
    assert mine.status_code == 200
    assert mine.json()["username"] == "jdoe"
    assert (
        await auth.put(f"/api/v1/users/{imported}", json={"display_name": "x"}, headers=me)
    ).status_code == 403
    taken = await auth.put(f"/api/v1/users/{imported}", json={"email": "jane@example.com"}, headers=admin)
    assert taken.status_code == 409

    granted = await auth.post(
        f"/api/v1/users/{jane['user']['id']}/roles", json={"role": "operator"}, headers=admin
    )
    assert granted.status_code == 200
    assert granted.json()["roles"] == ["user", "operator"]
    assert (
        await auth.post(f"/api/v1/users/{imported}/roles", json={"role": "admin"}, headers=me)
    ).status_code == 403
    assert (
        await auth.post(f"/api/v1/users/{imported}/roles", json={"role": "god"}, headers=admin)
    ).status_code == 422
    refreshed = await auth.post("/api/v1/auth/refresh", json={"refresh_token": jane["refresh_token"]})
    assert refreshed.json()["user"]["roles"] == ["user", "operator"]

    last = await auth.delete(f"/api/v1/users/{root['id']}/roles/admin", headers=admin)
    assert (last.status_code, last.json()["error"]["code"]) == (409, "last_admin")
    removed = await auth.delete(f"/api/v1/users/{jane['user']['id']}/roles/operator", headers=admin)
    assert removed.json()["roles"] == ["user"]
    assert len(await rows(auth, users, users.c.email == "root@example.com")) == 1


async def test_erasure_deletes_the_account_and_announces_it_once_every_service_confirmed(auth):
    body = (await register(auth)).json()
    user_id = body["user"]["id"]
    admin = auth.as_("admin-1", "admin")
    assert (await auth.get(f"/api/v1/admin/erasures/{user_id}", headers=admin)).status_code == 404
    data = UserErasureRequested(user_id=user_id, requested_at="2026-11-26T00:00:00Z")
    handlers = event_handlers()
    events: list[Any] = [new_event(data, user_id=user_id)] + [
        new_event(confirmation(subject=pseudonym(user_id), erased_at="2026-11-26T00:01:00Z"))
        for confirmation in ERASURE_CONFIRMATIONS.values()
    ]
    for n, envelope in enumerate(events):
        async with auth.platform.database.uow_factory(SqlAuthUnitOfWork)() as uow:
            assert await uow.mark_processed(envelope)
            await handlers[envelope.type](envelope, parse_data(envelope), uow)
            await uow.commit()
        if n == 0:  # the account goes at once; the erasure waits for the other services
            assert await rows(auth, users) == []
            assert await rows(auth, identities) == []
            assert await rows(auth, refresh_tokens) == []
            progress = (await auth.get(f"/api/v1/admin/erasures/{user_id}", headers=admin)).json()
            assert progress["pending"] == list(ERASURE_CONFIRMATIONS)
            assert [s["service"] for s in progress["services"] if s["erased_at"]] == ["auth"]
            waiting = (await auth.get("/api/v1/admin/erasures", headers=admin)).json()["items"]
            assert [w["subject"] for w in waiting] == [pseudonym(user_id)]

    progress = await auth.get(f"/api/v1/admin/erasures/{user_id}", headers=admin)
    assert progress.status_code == 200, progress.text
    assert progress.json()["complete"] is True
    assert progress.json()["completed_at"] is not None
    assert (await auth.get("/api/v1/admin/erasures", headers=admin)).json()["items"] == []
    assert (await auth.get(f"/api/v1/admin/erasures/{user_id}", headers=auth.as_(user_id))).status_code == 403
    outbox = await rows(auth, messaging.outbox)
    assert [r.event_type for r in outbox] == ["user.registered", "user.erased"]
    assert user_id not in json.dumps(outbox[-1].payload)  # the announcement names only the pseudonym


async def test_identity_sign_in_link_and_merge_on_postgresql(auth):
    uow = auth.platform.database.uow_factory(SqlAuthUnitOfWork)
    tokens = JwtTokenIssuer(
        SigningKey.generate(), issuer=ISSUER, audience=AUDIENCE, access_ttl_s=60, refresh_ttl_s=600
    )
    me = await sign_in_with_identity(uow(), tokens, VerifiedIdentity("phone", "+14155552671"))
    other = await sign_in_with_identity(
        uow(), tokens, VerifiedIdentity("google", "g-1", email="me@example.com", email_verified=True)
    )
    result = await link_identity(uow(), me.user.id, VerifiedIdentity("google", "g-1"))
    assert result.merged_from == other.user.id
    assert result.user.email == "me@example.com"
    assert {r.provider for r in await rows(auth, identities, identities.c.user_id == me.user.id)} == {
        "phone",
        "google",
    }
    assert await rows(auth, users, users.c.id == other.user.id) == []
    async with auth.platform.database.engine.connect() as conn:
        live = await conn.scalar(
            select(func.count()).select_from(refresh_tokens).where(refresh_tokens.c.revoked_at.is_(None))
        )
    assert live == 1  # only mine; the merged user's session went with it
    types = [r.event_type for r in await rows(auth, messaging.outbox)]
    assert types == ["user.registered", "user.registered", "user.merged"]


async def test_jwks_serves_the_current_and_previous_keys(service_client, auth_settings, signing_key):
    old = SigningKey.generate()
    auth = await service_client(SERVICE, **auth_settings, jwt_previous_keys=[old.pem().decode()])
    keys = (await auth.get("/api/v1/auth/.well-known/jwks.json")).json()["keys"]
    assert [k["kid"] for k in keys] == [signing_key.kid, old.kid]
    assert all("d" not in k for k in keys)
