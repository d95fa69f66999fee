"""OAuth use cases on in-memory fakes: state (single use, bound to its provider), PKCE verifier and nonce
handed to the exchange, sign-in/up, client-app redirects with one-time login codes, identity tokens,
linking (with merge) and unlinking; and the client-redirect allow-list."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from spendsense_auth.domain.accounts import AuthError, VerifiedIdentity
from spendsense_auth.domain.oauth import (
    CompleteOAuthCallback,
    ExchangeIdToken,
    ExchangeOAuthCode,
    LinkOAuth,
    OAuthPolicy,
    RedeemLoginCode,
    StartOAuth,
    UnlinkOAuth,
    oauth_provider,
    provider_unavailable,
)
from spendsense_auth.handlers.oauth import OAuthUseCases
from spendsense_shared.testing.fakes import load_beside

oauth_fakes = load_beside(__file__, "oauth_fakes.py", "spendsense_auth_unit_oauth_fakes")

APP = "https://app.example/oauth/done"
ALICE = VerifiedIdentity("google", "g-1", "alice@example.com", True, "Alice")
ALICE_GITHUB = VerifiedIdentity("github", "42", "alice@example.com", True, "alice")
BOB_GITHUB = VerifiedIdentity("github", "43", "bob@example.com", True, "bob")


class OAuth:
    def __init__(self, uow: Any, tokens: Any) -> None:
        self.uow = uow
        self.google = oauth_fakes.FakeProvider("google", id_tokens=True)
        self.github = oauth_fakes.FakeProvider("github")
        self.apple = oauth_fakes.FakeProvider("apple", id_tokens=True)
        self.states = oauth_fakes.InMemoryStates()
        self.login_codes = oauth_fakes.InMemoryLoginCodes()
        self.use_cases = OAuthUseCases(
            uow=lambda: uow,
            tokens=tokens,
            providers=oauth_fakes.FakeProviders(
                {"google": self.google, "github": self.github, "apple": self.apple}
            ),
            states=self.states,
            login_codes=self.login_codes,
            policy=OAuthPolicy("https://api.example", (APP, "https://app.example/cb/")),
        )
        self.bus = self.use_cases.handlers()

    async def handle(self, message: Any) -> Any:
        return await self.bus[type(message)](message)

    async def code_and_state(self, identity: VerifiedIdentity, **start: Any) -> tuple[str, str]:
        provider = self.google if identity.provider == "google" else self.github
        started = await self.handle(StartOAuth(identity.provider, **start))  # type: ignore[arg-type]
        return provider.issue_code(identity), started.state

    async def sign_in(self, identity: VerifiedIdentity) -> Any:
        code, state = await self.code_and_state(identity)
        return await self.handle(ExchangeOAuthCode(identity.provider, code, state))  # type: ignore[arg-type]


@pytest.fixture
def oauth(uow: Any, tokens: Any) -> OAuth:
    return OAuth(uow, tokens)


async def test_start_keeps_a_fresh_state_with_pkce_verifier_and_nonce_for_ten_minutes(oauth: OAuth) -> None:
    first = await oauth.handle(StartOAuth("google"))
    second = await oauth.handle(StartOAuth("google"))
    assert first.state != second.state
    assert len(first.state) >= 32
    pending = oauth.states.items[first.state]
    assert pending.provider == "google"
    assert 43 <= len(pending.code_verifier) <= 128
    assert pending.nonce
    assert oauth.states.ttls[first.state] == 600
    assert parse_qs(urlsplit(first.url).query)["redirect_uri"] == [
        "https://api.example/api/v1/auth/oauth/google/callback"
    ]


async def test_sign_up_then_sign_in_as_the_same_user_with_the_stored_verifier(oauth: OAuth) -> None:
    code, state = await oauth.code_and_state(ALICE)
    pending = oauth.states.items[state]
    first = await oauth.handle(ExchangeOAuthCode("google", code, state))
    assert first.created
    assert first.user.email == "alice@example.com"
    exchange = oauth.google.exchanges[-1]
    assert (exchange.code_verifier, exchange.nonce) == (pending.code_verifier, pending.nonce)
    assert exchange.redirect_uri == "https://api.example/api/v1/auth/oauth/google/callback"
    again = await oauth.sign_in(ALICE)
    assert (again.user.id, again.created) == (first.user.id, False)
    assert oauth.uow.published_types().count("user.registered") == 1


async def test_state_is_single_use_and_bound_to_its_provider(oauth: OAuth) -> None:
    code, state = await oauth.code_and_state(ALICE)
    with pytest.raises(AuthError) as forged:
        await oauth.handle(ExchangeOAuthCode("google", code, "forged"))
    assert (forged.value.status, forged.value.code) == (400, "invalid_state")
    with pytest.raises(AuthError) as crossed:
        await oauth.handle(ExchangeOAuthCode("github", code, state))
    assert crossed.value.code == "invalid_state"
    assert oauth.github.exchanges == []  # refused before any call to the provider

    code, state = await oauth.code_and_state(ALICE)
    await oauth.handle(ExchangeOAuthCode("google", code, state))
    with pytest.raises(AuthError) as replayed:
        await oauth.handle(CompleteOAuthCallback("google", state, code))
    assert replayed.value.code == "invalid_state"


async def test_a_refused_code_and_an_unavailable_provider(oauth: OAuth) -> None:
    _, state = await oauth.code_and_state(ALICE)
    with pytest.raises(AuthError) as refused:
        await oauth.handle(ExchangeOAuthCode("google", "not-issued", state))
    assert (refused.value.status, refused.value.code) == (401, "oauth_failed")

    code, state = await oauth.code_and_state(ALICE)
    oauth.google.fail_with = provider_unavailable("google", "token request timed out")
    with pytest.raises(AuthError) as down:
        await oauth.handle(ExchangeOAuthCode("google", code, state))
    assert (down.value.status, down.value.code) == (502, "provider_unavailable")
    assert "user.registered" not in oauth.uow.published_types()


async def test_the_callback_answers_tokens_or_redirects_the_app_with_a_one_time_login_code(
    oauth: OAuth,
) -> None:
    code, state = await oauth.code_and_state(ALICE)
    outcome = await oauth.handle(CompleteOAuthCallback("google", state, code))
    assert outcome.signed_in is not None
    assert outcome.redirect_url is None

    code, state = await oauth.code_and_state(ALICE, client_redirect_uri=APP)
    outcome = await oauth.handle(CompleteOAuthCallback("google", state, code))
    assert outcome.signed_in is None
    assert outcome.redirect_url.startswith(APP + "?login_code=")
    login_code = parse_qs(urlsplit(outcome.redirect_url).query)["login_code"][0]
    redeemed = await oauth.handle(RedeemLoginCode(login_code))
    assert redeemed.user.email == "alice@example.com"
    with pytest.raises(AuthError) as again:
        await oauth.handle(RedeemLoginCode(login_code))
    assert again.value.code == "invalid_login_code"


async def test_a_denied_authorization_is_refused_or_reported_to_the_app(oauth: OAuth) -> None:
    started = await oauth.handle(StartOAuth("google"))
    with pytest.raises(AuthError) as denied:
        await oauth.handle(CompleteOAuthCallback("google", started.state, None, "access_denied"))
    assert (denied.value.status, denied.value.code) == (401, "oauth_failed")
    assert started.state not in oauth.states.items

    started = await oauth.handle(StartOAuth("google", APP))
    outcome = await oauth.handle(CompleteOAuthCallback("google", started.state, None, "access_denied"))
    assert parse_qs(urlsplit(outcome.redirect_url).query) == {
        "error": ["oauth_failed"],
        "reason": ["access_denied"],
    }


async def test_client_redirects_must_be_allow_listed(oauth: OAuth) -> None:
    for uri in (
        "https://evil.example/oauth/done",
        "https://app.example.evil.example/oauth/done",
        "https://app.example/oauth/done/more",
        "http://app.example/oauth/done",
        "https://user@app.example/oauth/done",
        "javascript:alert(1)",
        "https://app.example/cb/../../admin",
    ):
        with pytest.raises(AuthError) as refused:
            await oauth.handle(StartOAuth("google", uri))
        assert (refused.value.status, refused.value.code) == (400, "redirect_uri_not_allowed"), uri
    assert (await oauth.handle(StartOAuth("google", APP + "?from=home"))).state
    assert (await oauth.handle(StartOAuth("google", "https://app.example/cb/mobile"))).state
    with pytest.raises(AuthError) as link_without_app:
        await oauth.handle(StartOAuth("google", intent="link"))
    assert link_without_app.value.code == "redirect_uri_required"


async def test_link_intent_hands_code_and_state_to_the_app_and_keeps_the_state(oauth: OAuth) -> None:
    me = await oauth.sign_in(ALICE)
    code, state = await oauth.code_and_state(BOB_GITHUB, client_redirect_uri=APP, intent="link")
    outcome = await oauth.handle(CompleteOAuthCallback("github", state, code))
    assert parse_qs(urlsplit(outcome.redirect_url).query) == {
        "provider": ["github"],
        "code": [code],
        "state": [state],
    }
    linked = await oauth.handle(LinkOAuth(me.user.id, "github", code, state))
    assert (linked.user.id, linked.merged_from) == (me.user.id, None)
    assert state not in oauth.states.items


async def test_linking_an_identity_of_another_account_merges_it(oauth: OAuth) -> None:
    other = await oauth.sign_in(BOB_GITHUB)
    me = await oauth.sign_in(ALICE)
    code, state = await oauth.code_and_state(BOB_GITHUB)
    linked = await oauth.handle(LinkOAuth(me.user.id, "github", code, state))
    assert (linked.user.id, linked.merged_from) == (me.user.id, other.user.id)
    merged = [e for e in oauth.uow.published if e.type == "user.merged"]
    assert [(e.data["source_user_id"], e.data["target_user_id"]) for e in merged] == [
        (other.user.id, me.user.id)
    ]
    assert (await oauth.sign_in(BOB_GITHUB)).user.id == me.user.id

    unlinked = await oauth.handle(UnlinkOAuth(me.user.id, "github"))
    assert unlinked.id == me.user.id
    with pytest.raises(AuthError) as last:
        await oauth.handle(UnlinkOAuth(me.user.id, "google"))
    assert (last.value.status, last.value.code) == (409, "last_identity")


async def test_identity_tokens_sign_in_and_link_only_where_the_provider_issues_them(oauth: OAuth) -> None:
    apple = VerifiedIdentity("apple", "a-1", "alice@privaterelay.example", True)
    oauth.apple.id_token_identities["good"] = apple
    first = await oauth.handle(ExchangeIdToken("apple", "good"))
    assert (await oauth.handle(ExchangeIdToken("apple", "good"))).user.id == first.user.id
    with pytest.raises(AuthError) as bad:
        await oauth.handle(ExchangeIdToken("apple", "forged"))
    assert (bad.value.status, bad.value.code) == (401, "invalid_id_token")
    with pytest.raises(AuthError) as unsupported:
        await oauth.handle(ExchangeIdToken("github", "good"))
    assert unsupported.value.code == "id_token_not_supported"

    me = await oauth.sign_in(ALICE_GITHUB)
    linked = await oauth.handle(LinkOAuth(me.user.id, "apple", id_token="good"))
    assert linked.merged_from == first.user.id
    with pytest.raises(AuthError):
        await oauth.handle(LinkOAuth(me.user.id, "apple"))


async def test_unknown_and_unconfigured_providers(oauth: OAuth) -> None:
    with pytest.raises(AuthError) as unknown:
        oauth_provider("myspace")
    assert (unknown.value.status, unknown.value.code) == (404, "unknown_provider")
    assert oauth_provider("apple") == "apple"
    with pytest.raises(AuthError) as unconfigured:
        await oauth.handle(StartOAuth("facebook"))
    assert (unconfigured.value.status, unconfigured.value.code) == (503, "provider_not_configured")
