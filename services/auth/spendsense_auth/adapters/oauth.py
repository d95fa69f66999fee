"""The OAuth adapters: the providers' HTTP endpoints (authlib's ``AsyncOAuth2Client`` for the code
exchange and the user APIs), OIDC identity-token validation against the provider's JWKS (PyJWT), and
the Redis stores of pending authorizations (state → PKCE verifier, nonce) and one-time login codes.

Every request to a provider is bounded by ``oauth_timeout_s``; a timeout, a transport error or a 5xx
answers 502 ``provider_unavailable``, a refused code 401 ``oauth_failed``, an identity token that fails
validation 401 ``invalid_id_token``.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from datetime import datetime
from typing import Any

import httpx2
import jwt
from authlib.integrations.httpx_client import AsyncOAuth2Client, OAuthError
from authlib.oauth2.rfc6749.parameters import prepare_grant_uri
from authlib.oauth2.rfc7636 import create_s256_code_challenge

from spendsense_auth.domain.accounts import SignInResult, TokenPair, User, VerifiedIdentity
from spendsense_auth.domain.oauth import (
    OAUTH_PROVIDERS,
    OAuthProvider,
    PendingAuthorization,
    invalid_id_token,
    oauth_failed,
    provider_not_configured,
    provider_unavailable,
)
from spendsense_auth.handlers.oauth import LoginCodes, OAuthProviderClient, OAuthProviders, OAuthStates
from spendsense_auth.oauth_settings import OAuthSettings
from spendsense_shared.cache import Cache
from spendsense_shared.logging import get_logger

log = get_logger(__name__)

ID_TOKEN_ALGORITHMS = ("RS256", "ES256")
_TRANSPORT_ERRORS = (httpx2.HTTPError, httpx2.InvalidURL, ValueError)


# -- configuration -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ProviderConfig:
    name: OAuthProvider
    client_id: str
    client_secret: str
    authorize_url: str
    token_url: str
    scope: str
    userinfo_url: str | None = None
    jwks_url: str | None = None
    issuer: str | None = None  # set for OIDC providers: their id_token is validated
    authorize_params: Mapping[str, str] = field(default_factory=dict)

    @property
    def oidc(self) -> bool:
        return self.issuer is not None


def provider_configs(settings: OAuthSettings) -> dict[OAuthProvider, ProviderConfig | None]:
    """Each provider's configuration, None for a provider without client credentials."""

    def creds(name: str) -> tuple[str, str] | None:
        client_id = getattr(settings, f"oauth_{name}_client_id")
        secret = getattr(settings, f"oauth_{name}_client_secret")
        if not client_id or secret is None or not secret.get_secret_value():
            return None
        return client_id, secret.get_secret_value()

    s = settings
    configs: dict[OAuthProvider, ProviderConfig | None] = dict.fromkeys(OAUTH_PROVIDERS)
    if c := creds("google"):
        configs["google"] = ProviderConfig(
            "google", *c, s.oauth_google_authorize_url, s.oauth_google_token_url, "openid email profile",
            userinfo_url=s.oauth_google_userinfo_url, jwks_url=s.oauth_google_jwks_url,
            issuer=s.oauth_google_issuer,
        )  # fmt: skip
    if c := creds("github"):
        configs["github"] = ProviderConfig(
            "github", *c, s.oauth_github_authorize_url, s.oauth_github_token_url, "read:user user:email",
            userinfo_url=s.oauth_github_userinfo_url,
        )  # fmt: skip
    if c := creds("facebook"):
        configs["facebook"] = ProviderConfig(
            "facebook", *c, s.oauth_facebook_authorize_url, s.oauth_facebook_token_url,
            "email public_profile", userinfo_url=s.oauth_facebook_userinfo_url,
        )  # fmt: skip
    if c := creds("apple"):
        configs["apple"] = ProviderConfig(
            "apple", *c, s.oauth_apple_authorize_url, s.oauth_apple_token_url, "name email",
            jwks_url=s.oauth_apple_jwks_url, issuer=s.oauth_apple_issuer,
            authorize_params={"response_mode": "form_post"},
        )  # fmt: skip
    return configs


# -- identity tokens -----------------------------------------------------------------------------------


class JwksCache:
    """A provider's signing keys, fetched on first use, refetched when stale or when a token names an
    unknown ``kid`` (key rotation; at most every 10 s)."""

    def __init__(self, provider: str, url: str, timeout_s: float, ttl_s: float = 3600):
        self.provider, self.url, self.timeout_s, self.ttl_s = provider, url, timeout_s, ttl_s
        self._keys: dict[str, jwt.PyJWK] = {}
        self._fetched_at = -float("inf")
        self._lock = asyncio.Lock()

    async def key(self, kid: str) -> jwt.PyJWK:
        age = time.monotonic() - self._fetched_at
        if kid not in self._keys or age > self.ttl_s:
            async with self._lock:
                age = time.monotonic() - self._fetched_at
                if age > self.ttl_s or (kid not in self._keys and age > 10):
                    await self._refresh()
        if kid not in self._keys:
            raise invalid_id_token(f"the identity token is signed by a key {self.provider} does not publish")
        return self._keys[kid]

    async def _refresh(self) -> None:
        try:
            async with httpx2.AsyncClient(timeout=self.timeout_s) as client:
                response = await client.get(self.url)
            response.raise_for_status()
            keys = jwt.PyJWKSet.from_dict(response.json())
        except (*_TRANSPORT_ERRORS, jwt.PyJWTError) as exc:
            log.warning(
                "oauth_jwks_fetch_failed", provider=self.provider, error=str(exc) or type(exc).__name__
            )
            if not self._keys:
                raise provider_unavailable(self.provider, "its signing keys could not be fetched") from exc
            return
        self._keys = {k.key_id: k for k in keys.keys if k.key_id}
        self._fetched_at = time.monotonic()


def _as_bool(value: Any) -> bool:
    return value is True or (isinstance(value, str) and value.lower() == "true")


class IdTokenValidator:
    """Signature (the provider's JWKS), ``iss``, ``aud`` = our client id, ``exp``/``iat`` and, when we
    sent one, ``nonce``."""

    def __init__(self, config: ProviderConfig, timeout_s: float, leeway_s: float = 60):
        assert config.issuer
        assert config.jwks_url
        self.config = config
        self.jwks = JwksCache(config.name, config.jwks_url, timeout_s)
        self.leeway_s = leeway_s
        issuer = config.issuer
        # Google's tokens may name their issuer without the scheme.
        self.issuers = (
            [issuer, issuer.removeprefix("https://")] if issuer.startswith("https://") else [issuer]
        )

    async def validate(self, id_token: str, nonce: str | None) -> VerifiedIdentity:
        try:
            header = jwt.get_unverified_header(id_token)
        except jwt.PyJWTError as exc:
            raise invalid_id_token("the identity token is malformed") from exc
        alg = header.get("alg")
        if alg not in ID_TOKEN_ALGORITHMS:
            raise invalid_id_token(f"identity tokens signed with {alg!r} are not accepted")
        key = await self.jwks.key(str(header.get("kid", "")))
        try:
            claims = jwt.decode(
                id_token,
                key.key,
                algorithms=[str(alg)],
                audience=self.config.client_id,
                issuer=self.issuers,
                leeway=self.leeway_s,
                options={"require": ["iss", "aud", "exp", "iat", "sub"]},
            )
        except jwt.InvalidAudienceError as exc:
            raise invalid_id_token("the identity token was issued for another client") from exc
        except jwt.InvalidIssuerError as exc:
            raise invalid_id_token("the identity token has the wrong issuer") from exc
        except jwt.ExpiredSignatureError as exc:
            raise invalid_id_token("the identity token has expired") from exc
        except jwt.PyJWTError as exc:
            raise invalid_id_token(f"the identity token is invalid: {exc}") from exc
        if nonce is not None and claims.get("nonce") != nonce:
            raise invalid_id_token("the identity token does not carry this sign-in's nonce")
        email = claims.get("email")
        return VerifiedIdentity(
            provider=self.config.name,
            subject=str(claims["sub"]),
            email=str(email).lower() if email else None,
            email_verified=bool(email) and _as_bool(claims.get("email_verified")),
            display_name=claims.get("name"),
        )


# -- the providers -------------------------------------------------------------------------------------


class AuthlibProvider(OAuthProviderClient):
    """One configured provider: builds its authorization URL, exchanges a code (with the PKCE
    verifier) and proves who the user is (OIDC id_token and userinfo, GitHub's user API and e-mails,
    Facebook's Graph /me)."""

    def __init__(self, config: ProviderConfig, timeout_s: float):
        self.config = config
        self.name: OAuthProvider = config.name
        self.timeout_s = timeout_s
        self.id_tokens = IdTokenValidator(config, timeout_s) if config.oidc else None

    @property
    def accepts_id_tokens(self) -> bool:
        return self.id_tokens is not None

    def authorization_url(self, *, state: str, code_verifier: str, nonce: str, redirect_uri: str) -> str:
        c = self.config
        extra: dict[str, str] = {
            "code_challenge": create_s256_code_challenge(code_verifier),
            "code_challenge_method": "S256",
            **c.authorize_params,
        }
        if c.oidc:
            extra["nonce"] = nonce
        url: str = prepare_grant_uri(
            c.authorize_url,
            c.client_id,
            "code",
            redirect_uri=redirect_uri,
            scope=c.scope,
            state=state,
            **extra,
        )
        return url

    def _client(self, redirect_uri: str | None = None) -> AsyncOAuth2Client:
        return AsyncOAuth2Client(
            client_id=self.config.client_id,
            client_secret=self.config.client_secret,
            token_endpoint_auth_method="client_secret_post",
            redirect_uri=redirect_uri,
            code_challenge_method="S256",
            timeout=self.timeout_s,
        )

    async def exchange_code(
        self, *, code: str, code_verifier: str, nonce: str, redirect_uri: str
    ) -> VerifiedIdentity:
        async with self._client(redirect_uri) as client:
            try:
                token = await client.fetch_token(
                    self.config.token_url,
                    grant_type="authorization_code",
                    code=code,
                    code_verifier=code_verifier,
                )
            except OAuthError as exc:
                log.info("oauth_code_refused", provider=self.name, error=exc.error)
                raise oauth_failed(f"{self.name} refused the authorization code ({exc.error})") from exc
            except _TRANSPORT_ERRORS as exc:
                raise self._unavailable("token", exc) from exc
            if self.id_tokens is not None:
                return await self._oidc_identity(client, dict(token), nonce)
            if self.name == "github":
                return await self._github_identity(client)
            return await self._facebook_identity(client)

    async def verify_id_token(self, id_token: str, nonce: str | None) -> VerifiedIdentity:
        assert self.id_tokens is not None
        return await self.id_tokens.validate(id_token, nonce)

    def _unavailable(self, step: str, exc: Exception) -> Exception:
        reason = "timed out" if isinstance(exc, httpx2.TimeoutException) else (str(exc) or type(exc).__name__)
        log.warning("oauth_provider_unavailable", provider=self.name, step=step, error=reason)
        return provider_unavailable(self.name, f"{step} request {reason}")

    async def _get_json(self, client: AsyncOAuth2Client, url: str, step: str, **kwargs: Any) -> Any:
        try:
            response = await client.get(url, **kwargs)
        except _TRANSPORT_ERRORS as exc:
            raise self._unavailable(step, exc) from exc
        if response.status_code in (401, 403):
            raise oauth_failed(f"{self.name} refused its own access token at {step}")
        try:
            response.raise_for_status()
            return response.json()
        except _TRANSPORT_ERRORS as exc:
            raise self._unavailable(step, exc) from exc

    async def _oidc_identity(
        self, client: AsyncOAuth2Client, token: dict[str, Any], nonce: str
    ) -> VerifiedIdentity:
        assert self.id_tokens is not None
        id_token = token.get("id_token")
        if not isinstance(id_token, str):
            raise oauth_failed(f"{self.name} answered without an identity token")
        identity = await self.id_tokens.validate(id_token, nonce)
        if not self.config.userinfo_url:
            return identity
        info = await self._get_json(client, self.config.userinfo_url, "userinfo")
        if not isinstance(info, dict) or str(info.get("sub")) != identity.subject:
            raise oauth_failed(f"{self.name}'s userinfo names another subject than its identity token")
        email = info.get("email") or identity.email
        verified = (
            _as_bool(info.get("email_verified")) if "email_verified" in info else identity.email_verified
        )
        return VerifiedIdentity(
            provider=self.name,
            subject=identity.subject,
            email=str(email).lower() if email else None,
            email_verified=bool(email) and verified,
            display_name=info.get("name") or identity.display_name,
        )

    async def _github_identity(self, client: AsyncOAuth2Client) -> VerifiedIdentity:
        assert self.config.userinfo_url
        headers = {"Accept": "application/vnd.github+json"}
        user = await self._get_json(client, self.config.userinfo_url, "user", headers=headers)
        if not isinstance(user, dict) or user.get("id") is None:
            raise oauth_failed("github's user API answered without a user id")
        emails = await self._get_json(
            client, self.config.userinfo_url.rstrip("/") + "/emails", "emails", headers=headers
        )
        verified = (
            [e for e in emails if isinstance(e, dict) and e.get("verified")]
            if isinstance(emails, list)
            else []
        )
        chosen = next((e for e in verified if e.get("primary")), verified[0] if verified else None)
        email = str(chosen["email"]).lower() if chosen and chosen.get("email") else None
        return VerifiedIdentity(
            provider="github",
            subject=str(user["id"]),
            email=email,
            email_verified=email is not None,
            display_name=user.get("name") or user.get("login"),
        )

    async def _facebook_identity(self, client: AsyncOAuth2Client) -> VerifiedIdentity:
        assert self.config.userinfo_url
        me = await self._get_json(client, self.config.userinfo_url, "me", params={"fields": "id,name,email"})
        if not isinstance(me, dict) or not me.get("id"):
            raise oauth_failed("facebook's Graph API answered without a user id")
        email = me.get("email")
        # Facebook does not say whether the address was confirmed: never trusted to join accounts.
        return VerifiedIdentity(
            provider="facebook",
            subject=str(me["id"]),
            email=str(email).lower() if email else None,
            email_verified=False,
            display_name=me.get("name"),
        )


class ConfiguredProviders(OAuthProviders):
    """The providers with credentials; the others answer 503 ``provider_not_configured``."""

    def __init__(self, settings: OAuthSettings):
        self._clients = {
            name: AuthlibProvider(config, settings.oauth_timeout_s) if config else None
            for name, config in provider_configs(settings).items()
        }

    def get(self, provider: OAuthProvider) -> AuthlibProvider:
        client = self._clients.get(provider)
        if client is None:
            raise provider_not_configured(provider)
        return client

    @property
    def configured(self) -> list[OAuthProvider]:
        return [name for name, client in self._clients.items() if client is not None]


# -- Redis stores --------------------------------------------------------------------------------------


class RedisOAuthStates(OAuthStates):
    """``oauth_state:{state}`` → the pending authorization, with a TTL; taken atomically (GETDEL) so a
    state serves exactly one callback or exchange."""

    def __init__(self, cache: Cache):
        self.cache = cache

    async def put(self, state: str, pending: PendingAuthorization, ttl_s: int) -> None:
        await self.cache.set("oauth_state", state, value=json.dumps(asdict(pending)), ttl_s=ttl_s)

    async def take(self, state: str) -> PendingAuthorization | None:
        raw = await self.cache.client.getdel(self.cache.key("oauth_state", state))
        return _pending(raw)

    async def peek(self, state: str) -> PendingAuthorization | None:
        return _pending(await self.cache.get("oauth_state", state))


def _pending(raw: bytes | str | None) -> PendingAuthorization | None:
    if raw is None:
        return None
    try:
        return PendingAuthorization(**json.loads(raw))
    except (ValueError, TypeError):
        return None


class RedisLoginCodes(LoginCodes):
    """``oauth_login:{code}`` → a sign-in's result, for a minute, redeemed once."""

    def __init__(self, cache: Cache):
        self.cache = cache

    async def put(self, code: str, result: SignInResult, ttl_s: int) -> None:
        await self.cache.set("oauth_login", code, value=json.dumps(dump_sign_in(result)), ttl_s=ttl_s)

    async def take(self, code: str) -> SignInResult | None:
        raw = await self.cache.client.getdel(self.cache.key("oauth_login", code))
        if raw is None:
            return None
        try:
            return load_sign_in(json.loads(raw))
        except (ValueError, TypeError, KeyError):
            return None


def dump_sign_in(result: SignInResult) -> dict[str, Any]:
    user = asdict(result.user)
    user["created_at"] = result.user.created_at.isoformat()
    user["roles"] = list(result.user.roles)
    return {"user": user, "tokens": asdict(result.tokens), "created": result.created}


def load_sign_in(data: dict[str, Any]) -> SignInResult:
    user = dict(data["user"])
    user["created_at"] = datetime.fromisoformat(user["created_at"])
    user["roles"] = tuple(user["roles"])
    return SignInResult(user=User(**user), tokens=TokenPair(**data["tokens"]), created=bool(data["created"]))
