"""Sign-in with OAuth providers (Google, GitHub, Facebook, Apple): the provider names, the pending
authorization kept between the redirect and the callback, the commands of the OAuth use cases, the
client-redirect allow-list policy and the refusals.

How a client uses it (documented in the API too):

* Browser, JSON answer: ``GET /api/v1/auth/oauth/{provider}/authorize`` → 302 to the provider → the
  provider redirects to ``/api/v1/auth/oauth/{provider}/callback`` (Apple: POST, ``form_post``) →
  the callback answers the token pair JSON (SPEC §9 shape).
* Browser, back to the client app: ``authorize?redirect_uri=<allow-listed app URL>`` → the callback
  signs in and redirects to ``<app URL>?login_code=<one-time code>`` (valid for a minute, single use);
  the app trades it at ``POST /api/v1/auth/oauth/{provider}/token`` ``{"login_code"}`` for the tokens.
* Linking from a browser: ``authorize?intent=link&redirect_uri=<app URL>`` → the callback does not
  sign in; it hands ``code`` and ``state`` on to the app (``<app URL>?provider=…&code=…&state=…``),
  which posts them with its bearer token to ``POST /api/v1/auth/oauth/link``.
* API clients that receive the provider's redirect themselves post ``{"code", "state"}`` to
  ``POST /api/v1/auth/oauth/{provider}/token`` (or, for Apple, the identity token ``{"id_token"}``).

The state is random, kept 10 minutes and single use (CSRF); the PKCE (S256) verifier and the OIDC
nonce are kept with it and never leave the service.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, get_args
from urllib.parse import urlsplit

from spendsense_auth.domain.accounts import AuthError, LinkResult, SignInResult, User
from spendsense_shared.messagebus import Command

OAuthProvider = Literal["google", "github", "facebook", "apple"]
OAUTH_PROVIDERS: tuple[OAuthProvider, ...] = get_args(OAuthProvider)
Intent = Literal["sign_in", "link"]


def oauth_provider(name: str) -> OAuthProvider:
    """The provider of that name, or 404 ``unknown_provider``."""
    for provider in OAUTH_PROVIDERS:
        if provider == name:
            return provider
    raise AuthError(
        404, "unknown_provider", f"unknown OAuth provider {name!r}; one of {list(OAUTH_PROVIDERS)}"
    )


# -- what is kept between the redirect and the callback ----------------------------------------------


@dataclass(frozen=True)
class PendingAuthorization:
    """Kept in Redis under the state for 10 minutes, taken (deleted) by the first callback or exchange."""

    provider: OAuthProvider
    code_verifier: str  # PKCE S256
    nonce: str  # OIDC
    intent: Intent = "sign_in"
    client_redirect_uri: str | None = None


@dataclass(frozen=True)
class AuthorizationRedirect:
    url: str
    state: str


@dataclass(frozen=True)
class CallbackOutcome:
    """Either the sign-in (answered as JSON) or a redirect back to the client app."""

    signed_in: SignInResult | None = None
    redirect_url: str | None = None


# -- policy --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class OAuthPolicy:
    redirect_base_url: str  # where the providers send the user back: {base}/api/v1/auth/oauth/{p}/callback
    allowed_client_redirects: tuple[str, ...] = ()
    state_ttl_s: int = 600
    login_code_ttl_s: int = 60

    def callback_url(self, provider: OAuthProvider) -> str:
        return f"{self.redirect_base_url.rstrip('/')}/api/v1/auth/oauth/{provider}/callback"

    def check_client_redirect(self, uri: str) -> str:
        """The client app's redirect URI when it is on the allow-list (same scheme, host and port; the
        same path, or under an allowed path that ends in ``/``); else 400 ``redirect_uri_not_allowed``."""
        try:
            wanted = urlsplit(uri)
        except ValueError:
            wanted = None
        if wanted is not None and wanted.scheme in ("http", "https") and not wanted.fragment:
            for allowed in self.allowed_client_redirects:
                rule = urlsplit(allowed)
                same_origin = (rule.scheme, rule.netloc.lower()) == (wanted.scheme, wanted.netloc.lower())
                path_ok = wanted.path == rule.path or (
                    rule.path.endswith("/") and wanted.path.startswith(rule.path) and ".." not in wanted.path
                )
                if same_origin and path_ok and "@" not in wanted.netloc:
                    return uri
        raise AuthError(
            400, "redirect_uri_not_allowed", "redirect_uri is not on the allow-list of client apps"
        )


# -- refusals ------------------------------------------------------------------------------------------


def invalid_state() -> AuthError:
    return AuthError(400, "invalid_state", "unknown, expired or already used OAuth state")


def provider_not_configured(provider: str) -> AuthError:
    env = (
        f"SPENDSENSE_OAUTH_{provider.upper()}_CLIENT_ID and SPENDSENSE_OAUTH_{provider.upper()}_CLIENT_SECRET"
    )
    return AuthError(503, "provider_not_configured", f"sign-in with {provider} is not configured (set {env})")


def oauth_failed(message: str) -> AuthError:
    return AuthError(401, "oauth_failed", message)


def invalid_id_token(message: str) -> AuthError:
    return AuthError(401, "invalid_id_token", message)


def provider_unavailable(provider: str, reason: str) -> AuthError:
    return AuthError(502, "provider_unavailable", f"{provider} is unavailable: {reason}")


# -- commands ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class StartOAuth(Command[AuthorizationRedirect]):
    """Create a state (+ PKCE verifier, nonce) and the provider's authorization URL."""

    provider: OAuthProvider
    client_redirect_uri: str | None = None
    intent: Intent = "sign_in"


@dataclass(frozen=True)
class CompleteOAuthCallback(Command[CallbackOutcome]):
    """The provider sent the user back: take the state, exchange the code, sign in (or hand the code on
    to the client app for linking)."""

    provider: OAuthProvider
    state: str
    code: str | None = None
    error: str | None = None  # the provider's refusal (access_denied, …)


@dataclass(frozen=True)
class ExchangeOAuthCode(Command[SignInResult]):
    """An API client's code exchange: ``{"code", "state"}``."""

    provider: OAuthProvider
    code: str
    state: str


@dataclass(frozen=True)
class ExchangeIdToken(Command[SignInResult]):
    """Sign in with an identity token the client obtained itself (Sign in with Apple)."""

    provider: OAuthProvider
    id_token: str
    nonce: str | None = None


@dataclass(frozen=True)
class RedeemLoginCode(Command[SignInResult]):
    """Trade the one-time code the callback put in the client app's redirect for the tokens."""

    login_code: str


@dataclass(frozen=True)
class LinkOAuth(Command[LinkResult]):
    """Link the identity proven by ``code``+``state`` (or, for Apple, ``id_token``) to ``user_id``;
    an identity that belongs to another account merges that account into this one."""

    user_id: str
    provider: OAuthProvider
    code: str | None = None
    state: str | None = None
    id_token: str | None = None
    nonce: str | None = None


@dataclass(frozen=True)
class UnlinkOAuth(Command[User]):
    user_id: str
    provider: OAuthProvider
