"""The OAuth use cases: start an authorization (state + PKCE + nonce kept in Redis), complete it at the
callback or through an API client's code exchange, sign in with an identity token (Apple), redeem the
one-time login code of a client-app redirect, link and unlink a provider.

The ports these handlers need beyond ``handlers.ports`` are declared here (``OAuthProviders``,
``OAuthStates``, ``LoginCodes``); ``adapters.oauth`` implements them, ``tests/unit/oauth_fakes.py``
fakes them.
"""

from __future__ import annotations

import abc
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode, urlsplit, urlunsplit

from spendsense_auth.domain.accounts import AuthError, LinkResult, SignInResult, User, VerifiedIdentity
from spendsense_auth.domain.oauth import (
    AuthorizationRedirect,
    CallbackOutcome,
    CompleteOAuthCallback,
    ExchangeIdToken,
    ExchangeOAuthCode,
    LinkOAuth,
    OAuthPolicy,
    OAuthProvider,
    PendingAuthorization,
    RedeemLoginCode,
    StartOAuth,
    UnlinkOAuth,
    invalid_state,
    oauth_failed,
)
from spendsense_auth.handlers.identities import link_identity, sign_in_with_identity, unlink_identity
from spendsense_auth.handlers.ports import TokenIssuer
from spendsense_auth.handlers.unit_of_work import AuthUnitOfWork
from spendsense_shared.logging import get_logger
from spendsense_shared.messagebus import Message, MessageHandler

log = get_logger(__name__)


# -- ports ---------------------------------------------------------------------------------------------


class OAuthProviderClient(abc.ABC):
    name: OAuthProvider

    @property
    @abc.abstractmethod
    def accepts_id_tokens(self) -> bool:
        """Whether the provider issues OIDC identity tokens a client may hand us directly."""

    @abc.abstractmethod
    def authorization_url(self, *, state: str, code_verifier: str, nonce: str, redirect_uri: str) -> str: ...

    @abc.abstractmethod
    async def exchange_code(
        self, *, code: str, code_verifier: str, nonce: str, redirect_uri: str
    ) -> VerifiedIdentity:
        """Exchange the code (with the PKCE verifier) and prove who the user is; AuthError 401
        ``oauth_failed`` when the provider refuses, 502 ``provider_unavailable`` when it fails."""

    @abc.abstractmethod
    async def verify_id_token(self, id_token: str, nonce: str | None) -> VerifiedIdentity:
        """Signature (provider's JWKS), iss, aud = our client id, exp (and nonce when given)."""


class OAuthProviders(abc.ABC):
    @abc.abstractmethod
    def get(self, provider: OAuthProvider) -> OAuthProviderClient:
        """The configured provider; AuthError 503 ``provider_not_configured`` otherwise."""


class OAuthStates(abc.ABC):
    @abc.abstractmethod
    async def put(self, state: str, pending: PendingAuthorization, ttl_s: int) -> None: ...

    @abc.abstractmethod
    async def take(self, state: str) -> PendingAuthorization | None:
        """The pending authorization, deleted in the same step (single use); None when unknown."""

    @abc.abstractmethod
    async def peek(self, state: str) -> PendingAuthorization | None: ...


class LoginCodes(abc.ABC):
    @abc.abstractmethod
    async def put(self, code: str, result: SignInResult, ttl_s: int) -> None: ...

    @abc.abstractmethod
    async def take(self, code: str) -> SignInResult | None: ...


# -- the use cases -------------------------------------------------------------------------------------


def _with_params(url: str, params: dict[str, str]) -> str:
    parts = urlsplit(url)
    query = "&".join(q for q in (parts.query, urlencode(params)) if q)
    return urlunsplit((parts.scheme, parts.netloc, parts.path, query, ""))


@dataclass(frozen=True)
class OAuthUseCases:
    uow: Callable[[], AuthUnitOfWork]
    tokens: TokenIssuer
    providers: OAuthProviders
    states: OAuthStates
    login_codes: LoginCodes
    policy: OAuthPolicy

    def handlers(self) -> dict[type[Message[Any]], MessageHandler]:
        return {
            StartOAuth: self.start,
            CompleteOAuthCallback: self.complete_callback,
            ExchangeOAuthCode: self.exchange_code,
            ExchangeIdToken: self.exchange_id_token,
            RedeemLoginCode: self.redeem_login_code,
            LinkOAuth: self.link,
            UnlinkOAuth: self.unlink,
        }

    async def start(self, cmd: StartOAuth) -> AuthorizationRedirect:
        provider = self.providers.get(cmd.provider)
        client_redirect = None
        if cmd.client_redirect_uri is not None:
            client_redirect = self.policy.check_client_redirect(cmd.client_redirect_uri)
        elif cmd.intent == "link":
            raise AuthError(
                400, "redirect_uri_required", "linking from a browser needs the app's redirect_uri"
            )
        state = secrets.token_urlsafe(32)
        pending = PendingAuthorization(
            provider=cmd.provider,
            code_verifier=secrets.token_urlsafe(64),  # 86 characters: within PKCE's 43..128
            nonce=secrets.token_urlsafe(24),
            intent=cmd.intent,
            client_redirect_uri=client_redirect,
        )
        await self.states.put(state, pending, self.policy.state_ttl_s)
        url = provider.authorization_url(
            state=state,
            code_verifier=pending.code_verifier,
            nonce=pending.nonce,
            redirect_uri=self.policy.callback_url(cmd.provider),
        )
        log.info(
            "oauth_started", provider=cmd.provider, intent=cmd.intent, client_redirect=bool(client_redirect)
        )
        return AuthorizationRedirect(url=url, state=state)

    async def _verified(self, provider: OAuthProvider, code: str, state: str) -> VerifiedIdentity:
        """Take the state (single use) and exchange the code with its PKCE verifier."""
        client = self.providers.get(provider)
        pending = await self.states.take(state)
        if pending is None or pending.provider != provider:
            log.warning(
                "oauth_state_refused", provider=provider, reason="unknown" if pending is None else "provider"
            )
            raise invalid_state()
        return await client.exchange_code(
            code=code,
            code_verifier=pending.code_verifier,
            nonce=pending.nonce,
            redirect_uri=self.policy.callback_url(provider),
        )

    async def complete_callback(self, cmd: CompleteOAuthCallback) -> CallbackOutcome:
        self.providers.get(cmd.provider)
        pending = await self.states.peek(cmd.state)
        if pending is None or pending.provider != cmd.provider:
            raise invalid_state()
        if cmd.error is not None or not cmd.code:
            await self.states.take(cmd.state)
            reason = cmd.error or "no code"
            if pending.client_redirect_uri:
                return CallbackOutcome(
                    redirect_url=_with_params(
                        pending.client_redirect_uri, {"error": "oauth_failed", "reason": reason}
                    )
                )
            raise oauth_failed(f"{cmd.provider} did not authorize the sign-in ({reason})")
        if pending.intent == "link" and pending.client_redirect_uri:
            # The app posts code and state with its bearer token to /oauth/link; the state stays.
            params = {"provider": cmd.provider, "code": cmd.code, "state": cmd.state}
            return CallbackOutcome(redirect_url=_with_params(pending.client_redirect_uri, params))
        result = await self.exchange_code(ExchangeOAuthCode(cmd.provider, cmd.code, cmd.state))
        if pending.client_redirect_uri:
            login_code = secrets.token_urlsafe(32)
            await self.login_codes.put(login_code, result, self.policy.login_code_ttl_s)
            return CallbackOutcome(
                redirect_url=_with_params(pending.client_redirect_uri, {"login_code": login_code})
            )
        return CallbackOutcome(signed_in=result)

    async def exchange_code(self, cmd: ExchangeOAuthCode) -> SignInResult:
        identity = await self._verified(cmd.provider, cmd.code, cmd.state)
        return await sign_in_with_identity(self.uow(), self.tokens, identity)

    async def _id_token_identity(
        self, provider: OAuthProvider, id_token: str, nonce: str | None
    ) -> VerifiedIdentity:
        client = self.providers.get(provider)
        if not client.accepts_id_tokens:
            raise AuthError(
                400, "id_token_not_supported", f"{provider} issues no identity tokens: use code and state"
            )
        return await client.verify_id_token(id_token, nonce)

    async def exchange_id_token(self, cmd: ExchangeIdToken) -> SignInResult:
        identity = await self._id_token_identity(cmd.provider, cmd.id_token, cmd.nonce)
        return await sign_in_with_identity(self.uow(), self.tokens, identity)

    async def redeem_login_code(self, cmd: RedeemLoginCode) -> SignInResult:
        result = await self.login_codes.take(cmd.login_code)
        if result is None:
            raise AuthError(400, "invalid_login_code", "unknown, expired or already used login code")
        return result

    async def link(self, cmd: LinkOAuth) -> LinkResult:
        if cmd.id_token is not None:
            identity = await self._id_token_identity(cmd.provider, cmd.id_token, cmd.nonce)
        elif cmd.code and cmd.state:
            identity = await self._verified(cmd.provider, cmd.code, cmd.state)
        else:
            raise AuthError(422, "validation_error", "give code and state (or, for Apple, id_token)")
        return await link_identity(self.uow(), cmd.user_id, identity, self.tokens.clock)

    async def unlink(self, cmd: UnlinkOAuth) -> User:
        return await unlink_identity(self.uow(), cmd.user_id, cmd.provider)
