"""``/api/v1/auth/oauth`` through the real app (PostgreSQL, Redis) against real local OAuth providers
over HTTP (``tests/oauth_provider.py``): redirect → provider → callback → token → userinfo."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from sqlalchemy import select

from spendsense_auth.adapters.orm import messaging
from spendsense_auth.bootstrap import SERVICE
from spendsense_shared.testing.fakes import load_beside

oauth_provider = load_beside(  # the same module the conftest's local providers run
    str(Path(__file__).parent), "oauth_provider.py", "spendsense_auth_tests_oauth_provider"
)

APP = "https://app.example/oauth/done"


@pytest.fixture
async def auth(service_client, providers, signing_key):
    return await service_client(
        SERVICE,
        jwt_private_key=signing_key.pem().decode(),
        oauth_redirect_base_url="http://auth",
        oauth_allowed_redirect_uris=[APP],
        oauth_timeout_s=1.0,
        **providers.settings(),
    )


def query_of(url: str) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlsplit(url).query).items()}


def local(url: str) -> str:
    parts = urlsplit(url)
    assert parts.netloc == "auth", url
    return f"{parts.path}?{parts.query}" if parts.query else parts.path


async def to_provider(auth, provider: str, **params: str) -> dict[str, str]:
    """Authorize at our service, follow to the provider (which auto-approves): the code and state it
    sends back to our callback."""
    started = await auth.get(f"/api/v1/auth/oauth/{provider}/authorize", params=params)
    assert started.status_code == 302, started.text
    async with httpx.AsyncClient() as browser:
        at_provider = await browser.get(started.headers["location"])
    if at_provider.status_code == 200:  # Apple's form_post page
        fields = dict(re.findall(r'name="([^"]+)" value="([^"]*)"', at_provider.text))
        assert re.search(r'action="http://auth/api/v1/auth/oauth/apple/callback"', at_provider.text)
        return fields
    assert at_provider.status_code == 302, at_provider.text
    back = at_provider.headers["location"]
    assert back.startswith(f"http://auth/api/v1/auth/oauth/{provider}/callback?")
    return query_of(back)


async def sign_in(auth, provider: str) -> dict[str, Any]:
    params = await to_provider(auth, provider)
    response = await auth.get(f"/api/v1/auth/oauth/{provider}/callback", params=params)
    assert response.status_code == 200, response.text
    return response.json()


def bearer(tokens: dict) -> dict[str, str]:
    return {"Authorization": f"Bearer {tokens['access_token']}"}


async def outbox(auth) -> list[dict]:
    async with auth.platform.database.engine.connect() as conn:
        rows = (await conn.execute(select(messaging.outbox.c.payload).order_by(messaging.outbox.c.seq))).all()
    return [r.payload for r in rows]


async def test_google_signs_up_once_and_signs_in_again_as_the_same_user(auth, providers) -> None:
    started = await auth.get("/api/v1/auth/oauth/google/authorize")
    query = query_of(started.headers["location"])
    assert started.headers["location"].startswith(providers.google.base_url + "/authorize?")
    assert query["code_challenge_method"] == "S256"
    assert query["redirect_uri"] == "http://auth/api/v1/auth/oauth/google/callback"
    assert "code_verifier" not in query

    first = await sign_in(auth, "google")
    assert first["token_type"] == "bearer"
    assert first["user"]["email"] == providers.google.user.email
    assert first["user"]["roles"] == ["user"]
    again = await sign_in(auth, "google")
    assert again["user"]["id"] == first["user"]["id"]
    registered = [e["data"] for e in await outbox(auth) if e["type"] == "user.registered"]
    assert [e["registered_via"] for e in registered] == ["oauth"]

    me = await auth.get(f"/api/v1/users/{first['user']['id']}", headers=bearer(again))
    assert me.status_code == 200, me.text


async def test_github_and_facebook_sign_in_through_their_user_apis(auth, providers) -> None:
    github = await sign_in(auth, "github")
    assert github["user"]["email"] == "someone@github.example"
    facebook = await sign_in(auth, "facebook")
    assert facebook["user"]["id"] != github["user"]["id"]
    assert facebook["user"]["email"] is None  # Facebook's address is never trusted as verified


async def test_apple_form_post_callback_and_identity_token_exchange(auth, providers) -> None:
    fields = await to_provider(auth, "apple")
    response = await auth.post("/api/v1/auth/oauth/apple/callback", data=fields)
    assert response.status_code == 200, response.text
    first = response.json()

    token = providers.apple.sign_id_token()
    exchanged = await auth.post("/api/v1/auth/oauth/apple/token", json={"id_token": token})
    assert exchanged.status_code == 200, exchanged.text
    assert exchanged.json()["user"]["id"] == first["user"]["id"]

    wrong_audience = providers.apple.sign_id_token(aud="com.example.someone-else")
    refused = await auth.post("/api/v1/auth/oauth/apple/token", json={"id_token": wrong_audience})
    assert refused.status_code == 401, refused.text
    assert refused.json()["error"]["code"] == "invalid_id_token"
    wrong_issuer = providers.apple.sign_id_token(iss="https://appleid.evil.example")
    refused = await auth.post("/api/v1/auth/oauth/apple/token", json={"id_token": wrong_issuer})
    assert refused.status_code == 401


async def test_api_clients_exchange_code_and_state(auth, providers) -> None:
    params = await to_provider(auth, "google")
    response = await auth.post(
        "/api/v1/auth/oauth/google/token", json={"code": params["code"], "state": params["state"]}
    )
    assert response.status_code == 200, response.text
    assert response.json()["user"]["email"] == providers.google.user.email


async def test_forged_state_and_replayed_callback_and_replayed_code_are_refused(auth, providers) -> None:
    params = await to_provider(auth, "google")
    forged = await auth.get("/api/v1/auth/oauth/google/callback", params={**params, "state": "forged"})
    assert forged.status_code == 400
    assert forged.json()["error"]["code"] == "invalid_state"
    missing = await auth.get("/api/v1/auth/oauth/google/callback", params={"code": params["code"]})
    assert missing.status_code == 400

    ok = await auth.get("/api/v1/auth/oauth/google/callback", params=params)
    assert ok.status_code == 200, ok.text
    replayed = await auth.get("/api/v1/auth/oauth/google/callback", params=params)
    assert replayed.status_code == 400  # our state is single use
    assert replayed.json()["error"]["code"] == "invalid_state"

    # The same (already used) code with a fresh state of ours: the provider refuses it.
    fresh = await to_provider(auth, "google")
    reused = await auth.post(
        "/api/v1/auth/oauth/google/token", json={"code": params["code"], "state": fresh["state"]}
    )
    assert reused.status_code == 401, reused.text
    assert reused.json()["error"]["code"] == "oauth_failed"

    # A state issued for one provider does not complete another.
    github_state = (await to_provider(auth, "github"))["state"]
    crossed = await auth.get(
        "/api/v1/auth/oauth/google/callback", params={"code": "x", "state": github_state}
    )
    assert crossed.status_code == 400


async def test_an_id_token_for_another_audience_in_the_code_flow_is_refused(auth, providers) -> None:
    providers.google.id_token_audience = "another-client"
    params = await to_provider(auth, "google")
    response = await auth.get("/api/v1/auth/oauth/google/callback", params=params)
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "invalid_id_token"


async def test_a_failing_or_slow_provider_answers_502(auth, providers) -> None:
    params = await to_provider(auth, "github")
    providers.github.token_delay_s = 2.0
    slow = await auth.get("/api/v1/auth/oauth/github/callback", params=params)
    assert slow.status_code == 502
    assert slow.json()["error"]["code"] == "provider_unavailable"
    providers.github.token_delay_s = 0
    providers.github.token_status = 500
    params = await to_provider(auth, "github")
    failing = await auth.get("/api/v1/auth/oauth/github/callback", params=params)
    assert failing.status_code == 502


async def test_unknown_and_unconfigured_providers(service_client, signing_key) -> None:
    auth = await service_client(SERVICE, jwt_private_key=signing_key.pem().decode())
    unknown = await auth.get("/api/v1/auth/oauth/myspace/authorize")
    assert unknown.status_code == 404
    assert unknown.json()["error"]["code"] == "unknown_provider"
    unconfigured = await auth.get("/api/v1/auth/oauth/google/authorize")
    assert unconfigured.status_code == 503
    assert unconfigured.json()["error"]["code"] == "provider_not_configured"
    assert "SPENDSENSE_OAUTH_GOOGLE_CLIENT_ID" in unconfigured.json()["error"]["message"]


async def test_a_client_app_redirect_carries_a_one_time_login_code(auth, providers) -> None:
    refused = await auth.get(
        "/api/v1/auth/oauth/google/authorize", params={"redirect_uri": "https://evil.example/x"}
    )
    assert refused.status_code == 400
    assert refused.json()["error"]["code"] == "redirect_uri_not_allowed"

    params = await to_provider(auth, "google", redirect_uri=APP)
    back = await auth.get("/api/v1/auth/oauth/google/callback", params=params)
    assert back.status_code == 302, back.text
    assert back.headers["location"].startswith(APP + "?login_code=")
    login_code = query_of(back.headers["location"])["login_code"]
    tokens = await auth.post("/api/v1/auth/oauth/google/token", json={"login_code": login_code})
    assert tokens.status_code == 200, tokens.text
    assert tokens.json()["user"]["email"] == providers.google.user.email
    again = await auth.post("/api/v1/auth/oauth/google/token", json={"login_code": login_code})
    assert again.status_code == 400
    assert again.json()["error"]["code"] == "invalid_login_code"


async def test_linking_a_provider_held_by_another_account_merges_it_then_unlink(auth, providers) -> None:
    providers.github.user = oauth_provider.TestUser(sub="777", email="other@github.example", name="other")
    other = await sign_in(auth, "github")
    me = await sign_in(auth, "google")
    assert me["user"]["id"] != other["user"]["id"]

    params = await to_provider(auth, "github")
    linked = await auth.post(
        "/api/v1/auth/oauth/link", json={"provider": "github", **params}, headers=bearer(me)
    )
    assert linked.status_code == 200, linked.text
    assert linked.json()["user"]["id"] == me["user"]["id"]
    assert linked.json()["merged_from"] == other["user"]["id"]
    merged = [e["data"] for e in await outbox(auth) if e["type"] == "user.merged"]
    assert merged == [{"source_user_id": other["user"]["id"], "target_user_id": me["user"]["id"]}]
    assert (await sign_in(auth, "github"))["user"]["id"] == me["user"]["id"]

    # Linking through a browser: the callback hands code and state to the app.
    params = await to_provider(auth, "apple", redirect_uri=APP, intent="link")
    back = await auth.post("/api/v1/auth/oauth/apple/callback", data=params)
    assert back.status_code == 303, back.text
    handed = query_of(back.headers["location"])
    assert handed["provider"] == "apple"
    linked = await auth.post(
        "/api/v1/auth/oauth/link",
        json={"provider": "apple", "code": handed["code"], "state": handed["state"]},
        headers=bearer(me),
    )
    assert linked.status_code == 200, linked.text
    assert linked.json()["merged_from"] is None

    unlinked = await auth.delete("/api/v1/auth/oauth/unlink/github", headers=bearer(me))
    assert unlinked.status_code == 200, unlinked.text
    assert unlinked.json()["unlinked"] == "github"
    assert (await sign_in(auth, "github"))["user"]["id"] != me["user"]["id"]  # a new account now


async def test_the_last_way_in_cannot_be_unlinked_and_link_needs_a_bearer(auth, providers) -> None:
    me = await sign_in(auth, "google")
    last = await auth.delete("/api/v1/auth/oauth/unlink/google", headers=bearer(me))
    assert last.status_code == 409
    assert last.json()["error"]["code"] == "last_identity"
    anonymous = await auth.post("/api/v1/auth/oauth/link", json={"provider": "apple", "id_token": "x.y.z"})
    assert anonymous.status_code == 401
    bad_body = await auth.post("/api/v1/auth/oauth/google/token", json={"code": "only-a-code"})
    assert bad_body.status_code == 422
