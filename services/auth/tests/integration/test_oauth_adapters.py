"""The OAuth adapters against real local providers (``tests/oauth_provider.py``) and real Redis: the
code exchange with PKCE, id_token validation, the user APIs, and the refusals."""

from __future__ import annotations

from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from joserfc.jwk import RSAKey

from spendsense_auth.adapters.oauth import ConfiguredProviders, RedisLoginCodes, RedisOAuthStates
from spendsense_auth.domain.accounts import AuthError, SignInResult, TokenPair, User
from spendsense_auth.domain.oauth import PendingAuthorization
from spendsense_auth.settings import AuthSettings
from spendsense_shared.cache import Cache
from spendsense_shared.testing.fakes import load_beside

oauth_provider = load_beside(  # the same module the conftest's local providers run
    str(Path(__file__).parent), "oauth_provider.py", "spendsense_auth_tests_oauth_provider"
)
CALLBACK = "http://auth/api/v1/auth/oauth/{}/callback"


def configured(providers: Any, **overrides: Any) -> ConfiguredProviders:
    return ConfiguredProviders(AuthSettings(**{**providers.settings(), "oauth_timeout_s": 2.0, **overrides}))


async def authorize(url: str) -> dict[str, str]:
    """Follow the authorization URL to the provider; the code and state it sends back."""
    async with httpx.AsyncClient() as client:
        response = await client.get(url)
    assert response.status_code == 302, response.text
    location = response.headers["location"]
    assert location.startswith("http://auth/")
    return {k: v[0] for k, v in parse_qs(urlsplit(location).query).items()}


async def sign_in(client: Any, provider: str, nonce: str = "n-1") -> tuple[str, dict[str, str]]:
    verifier = "v" * 64
    url = client.authorization_url(
        state="s-1", code_verifier=verifier, nonce=nonce, redirect_uri=CALLBACK.format(provider)
    )
    return verifier, await authorize(url)


async def test_google_code_exchange_with_pkce_validates_the_id_token_and_reads_userinfo(
    providers: Any,
) -> None:
    google = configured(providers).get("google")
    url = google.authorization_url(
        state="s-1", code_verifier="v" * 64, nonce="n-1", redirect_uri=CALLBACK.format("google")
    )
    query = parse_qs(urlsplit(url).query)
    assert query["code_challenge_method"] == ["S256"]
    assert query["nonce"] == ["n-1"]
    assert "openid" in query["scope"][0]
    params = await authorize(url)
    assert params["state"] == "s-1"
    identity = await google.exchange_code(
        code=params["code"], code_verifier="v" * 64, nonce="n-1", redirect_uri=CALLBACK.format("google")
    )
    assert identity.provider == "google"
    assert identity.subject == providers.google.user.sub
    assert identity.email == providers.google.user.email
    assert identity.email_verified is True

    with pytest.raises(AuthError) as replay:  # a code serves once
        await google.exchange_code(
            code=params["code"], code_verifier="v" * 64, nonce="n-1", redirect_uri=CALLBACK.format("google")
        )
    assert (replay.value.status, replay.value.code) == (401, "oauth_failed")


async def test_a_wrong_pkce_verifier_or_nonce_is_refused(providers: Any) -> None:
    google = configured(providers).get("google")
    _, params = await sign_in(google, "google")
    with pytest.raises(AuthError) as wrong_verifier:
        await google.exchange_code(
            code=params["code"], code_verifier="w" * 64, nonce="n-1", redirect_uri=CALLBACK.format("google")
        )
    assert wrong_verifier.value.code == "oauth_failed"

    verifier, params = await sign_in(google, "google", nonce="n-2")
    with pytest.raises(AuthError) as wrong_nonce:
        await google.exchange_code(
            code=params["code"],
            code_verifier=verifier,
            nonce="n-other",
            redirect_uri=CALLBACK.format("google"),
        )
    assert (wrong_nonce.value.status, wrong_nonce.value.code) == (401, "invalid_id_token")


async def test_an_id_token_for_another_audience_is_refused(providers: Any) -> None:
    providers.google.id_token_audience = "someone-elses-client"
    google = configured(providers).get("google")
    verifier, params = await sign_in(google, "google")
    with pytest.raises(AuthError) as refused:
        await google.exchange_code(
            code=params["code"], code_verifier=verifier, nonce="n-1", redirect_uri=CALLBACK.format("google")
        )
    assert (refused.value.status, refused.value.code) == (401, "invalid_id_token")
    assert "another client" in refused.value.message


async def test_github_identity_comes_from_the_user_api_and_its_verified_primary_email(providers: Any) -> None:
    providers.github.emails = [
        {"email": "old@github.example", "primary": False, "verified": True},
        {"email": "Main@GitHub.example", "primary": True, "verified": True},
        {"email": "unverified@github.example", "primary": False, "verified": False},
    ]
    github = configured(providers).get("github")
    verifier, params = await sign_in(github, "github")
    identity = await github.exchange_code(
        code=params["code"], code_verifier=verifier, nonce="", redirect_uri=CALLBACK.format("github")
    )
    assert (identity.subject, identity.email, identity.email_verified) == (
        "4242",
        "main@github.example",
        True,
    )

    providers.github.emails = [{"email": "unverified@github.example", "primary": True, "verified": False}]
    verifier, params = await sign_in(github, "github")
    identity = await github.exchange_code(
        code=params["code"], code_verifier=verifier, nonce="", redirect_uri=CALLBACK.format("github")
    )
    assert (identity.email, identity.email_verified) == (None, False)


async def test_facebook_identity_comes_from_graph_me_and_its_email_is_not_trusted(providers: Any) -> None:
    facebook = configured(providers).get("facebook")
    verifier, params = await sign_in(facebook, "facebook")
    identity = await facebook.exchange_code(
        code=params["code"], code_verifier=verifier, nonce="", redirect_uri=CALLBACK.format("facebook")
    )
    assert identity.subject == providers.facebook.user.sub
    assert identity.email == providers.facebook.user.email
    assert identity.email_verified is False


async def test_apple_identity_tokens_are_checked_for_signature_issuer_audience_and_expiry(
    providers: Any,
) -> None:
    apple = configured(providers).get("apple")
    assert apple.accepts_id_tokens
    identity = await apple.verify_id_token(providers.apple.sign_id_token(), None)
    assert (identity.provider, identity.subject, identity.email_verified) == (
        "apple",
        providers.apple.user.sub,
        True,
    )

    forged_key = RSAKey.generate_key(2048, parameters={"kid": providers.apple.key.kid})
    bad = {
        "audience": providers.apple.sign_id_token(aud="com.example.other"),
        "issuer": providers.apple.sign_id_token(iss="https://evil.example"),
        "expired": providers.apple.sign_id_token(expires_in=-3600),
        "signature": providers.apple.sign_id_token(key=forged_key),
        "nonce": providers.apple.sign_id_token(nonce="other"),
        "malformed": "not.a.jwt",
    }
    for reason, token in bad.items():
        with pytest.raises(AuthError) as refused:
            await apple.verify_id_token(token, "expected" if reason == "nonce" else None)
        assert (refused.value.status, refused.value.code) == (401, "invalid_id_token"), reason


async def test_apple_authorization_asks_for_form_post(providers: Any) -> None:
    apple = configured(providers).get("apple")
    url = apple.authorization_url(
        state="s", code_verifier="v" * 64, nonce="n", redirect_uri=CALLBACK.format("apple")
    )
    assert parse_qs(urlsplit(url).query)["response_mode"] == ["form_post"]


async def test_a_failing_or_slow_provider_answers_provider_unavailable(providers: Any) -> None:
    github = configured(providers, oauth_timeout_s=0.3).get("github")
    verifier, params = await sign_in(github, "github")
    providers.github.token_status = 503
    with pytest.raises(AuthError) as failing:
        await github.exchange_code(
            code=params["code"], code_verifier=verifier, nonce="", redirect_uri=CALLBACK.format("github")
        )
    assert (failing.value.status, failing.value.code) == (502, "provider_unavailable")

    providers.github.token_status = None
    providers.github.token_delay_s = 1.0
    with pytest.raises(AuthError) as slow:
        await github.exchange_code(
            code=params["code"], code_verifier=verifier, nonce="", redirect_uri=CALLBACK.format("github")
        )
    assert (slow.value.status, slow.value.code) == (502, "provider_unavailable")
    assert "timed out" in slow.value.message


async def test_a_provider_without_credentials_is_not_configured() -> None:
    providers = ConfiguredProviders(AuthSettings(oauth_github_client_id="only-an-id"))
    assert providers.configured == []
    with pytest.raises(AuthError) as refused:
        providers.get("github")
    assert (refused.value.status, refused.value.code) == (503, "provider_not_configured")
    assert "SPENDSENSE_OAUTH_GITHUB_CLIENT_SECRET" in refused.value.message


async def test_states_and_login_codes_are_single_use_and_expire(infra: Any, isolation_id: str) -> None:
    cache = Cache(infra.redis_url, "auth", isolation_id)
    try:
        states = RedisOAuthStates(cache)
        pending = PendingAuthorization("google", "v" * 64, "n", "link", "https://app.example/done")
        await states.put("s-1", pending, ttl_s=600)
        assert await states.peek("s-1") == pending
        assert await states.take("s-1") == pending
        assert await states.take("s-1") is None
        ttl = (
            await cache.client.ttl(cache.key("oauth_state", "s-2"))
            if await states.put("s-2", pending, 600) is None
            else 0
        )
        assert 590 <= ttl <= 600

        codes = RedisLoginCodes(cache)
        from datetime import UTC, datetime

        result = SignInResult(
            user=User("u1", "a@b.example", None, ("user",), datetime(2024, 1, 2, tzinfo=UTC), "A"),
            tokens=TokenPair("at", "rt", 3600),
            created=True,
        )
        await codes.put("c-1", result, ttl_s=60)
        assert await codes.take("c-1") == result
        assert await codes.take("c-1") is None
    finally:
        await cache.close()
