"""``/api/v1/auth/oauth``: sign in with Google, GitHub, Facebook or Apple; link and unlink a provider.

* ``GET /{provider}/authorize[?redirect_uri=<allow-listed app URL>][&intent=link]`` → 302 to the
  provider (state, PKCE S256 verifier and nonce kept 10 minutes in Redis, single use).
* ``GET /{provider}/callback`` (``POST`` for Apple's ``form_post``) → the token pair (SPEC §9 shape), or
  — when the authorization named the app's ``redirect_uri`` — a redirect to it carrying a one-time
  ``login_code`` (to trade at ``POST /{provider}/token``), or for ``intent=link`` the ``code`` and
  ``state`` for ``POST /link``.
* ``POST /{provider}/token``: ``{"code", "state"}`` (API clients), ``{"id_token", "nonce"?}`` (Sign in
  with Apple's identity token) or ``{"login_code"}`` → the token pair.
* ``POST /link`` (bearer): ``{"provider", "code", "state"}`` or ``{"provider": "apple", "id_token"}`` →
  ``{"user", "merged_from"}`` (another account owning that identity is merged into this one).
* ``DELETE /unlink/{provider}`` (bearer) → ``{"user", "unlinked"}``; never the last way in (409).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, Depends, Form, Query
from fastapi.responses import RedirectResponse, Response
from pydantic import BaseModel, ConfigDict, Field, model_validator

from spendsense_auth.api.errors import api_error
from spendsense_auth.api.schemas import TokenResponse, UserOut
from spendsense_auth.domain.accounts import AuthError
from spendsense_auth.domain.oauth import (
    CallbackOutcome,
    CompleteOAuthCallback,
    ExchangeIdToken,
    ExchangeOAuthCode,
    LinkOAuth,
    OAuthProvider,
    RedeemLoginCode,
    StartOAuth,
    UnlinkOAuth,
    invalid_state,
    oauth_provider,
)
from spendsense_shared.http.deps import Bus
from spendsense_shared.messagebus import Message, MessageBus
from spendsense_shared.security import Principal, current_principal
from spendsense_shared.text import StoredText

router = APIRouter(prefix="/api/v1/auth/oauth", tags=["auth: oauth"])

MAX_STATE = 256
_ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"description": "`invalid_state`, `redirect_uri_not_allowed`, `invalid_login_code`"},
    401: {"description": "`oauth_failed` (the provider refused) or `invalid_id_token`"},
    404: {"description": "`unknown_provider`"},
    502: {"description": "`provider_unavailable` (error or timeout at the provider)"},
    503: {"description": "`provider_not_configured`"},
}


async def _handle(bus: MessageBus, message: Message[Any]) -> Any:
    try:
        return await bus.handle(message)
    except AuthError as exc:
        raise api_error(exc) from exc


def _provider(provider: str) -> OAuthProvider:
    try:
        return oauth_provider(provider)
    except AuthError as exc:
        raise api_error(exc) from exc


Provider = Annotated[OAuthProvider, Depends(_provider)]


class OAuthTokenRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    code: StoredText | None = Field(None, min_length=1, max_length=2048, description="The provider's code")
    state: StoredText | None = Field(
        None, min_length=1, max_length=MAX_STATE, description="Our state of that code"
    )
    id_token: StoredText | None = Field(
        None, min_length=1, max_length=16384, description="An identity token (Apple)"
    )
    nonce: StoredText | None = Field(
        None, max_length=256, description="The nonce the app put into the identity token"
    )
    login_code: StoredText | None = Field(
        None, min_length=1, max_length=256, description="From the callback's redirect"
    )

    @model_validator(mode="after")
    def _one_way(self) -> OAuthTokenRequest:
        ways = [
            self.code is not None or self.state is not None,
            self.id_token is not None,
            self.login_code is not None,
        ]
        if sum(ways) != 1 or (ways[0] and (self.code is None or self.state is None)):
            raise ValueError("give code and state, or id_token, or login_code")
        return self


class LinkRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    provider: OAuthProvider
    code: StoredText | None = Field(None, min_length=1, max_length=2048)
    state: StoredText | None = Field(None, min_length=1, max_length=MAX_STATE)
    id_token: StoredText | None = Field(None, min_length=1, max_length=16384)
    nonce: StoredText | None = Field(None, max_length=256)

    @model_validator(mode="after")
    def _one_way(self) -> LinkRequest:
        by_code = self.code is not None and self.state is not None
        if by_code == (self.id_token is not None) or (not by_code and (self.code or self.state)):
            raise ValueError("give code and state, or id_token")
        return self


class LinkOut(BaseModel):
    user: UserOut
    merged_from: str | None


class UnlinkOut(BaseModel):
    user: UserOut
    unlinked: str


@router.get(
    "/{provider}/authorize",
    status_code=302,
    response_class=RedirectResponse,
    responses=_ERRORS,
    summary="Start signing in with a provider (302 to it)",
)
async def authorize(
    provider: Provider,
    bus: Bus,
    redirect_uri: Annotated[
        str | None, Query(max_length=2048, description="Allow-listed client-app URL")
    ] = None,
    intent: Literal["sign_in", "link"] = "sign_in",
) -> RedirectResponse:
    started = await _handle(bus, StartOAuth(provider, redirect_uri, intent))
    return RedirectResponse(started.url, status_code=302, headers={"Cache-Control": "no-store"})


def _answer(outcome: CallbackOutcome, redirect_status: int) -> Response:
    if outcome.redirect_url is not None:
        return RedirectResponse(
            outcome.redirect_url, status_code=redirect_status, headers={"Cache-Control": "no-store"}
        )
    assert outcome.signed_in is not None
    body = TokenResponse.of(outcome.signed_in).model_dump_json()
    return Response(body, media_type="application/json", headers={"Cache-Control": "no-store"})


async def _callback(
    bus: MessageBus, provider: OAuthProvider, code: str | None, state: str | None, error: str | None
) -> CallbackOutcome:
    if not state or len(state) > MAX_STATE:
        raise api_error(invalid_state())
    if code is not None and len(code) > 2048:
        raise api_error(AuthError(400, "validation_error", "code: too long"))
    outcome: CallbackOutcome = await _handle(
        bus, CompleteOAuthCallback(provider, state, code, error and error[:100])
    )
    return outcome


@router.get(
    "/{provider}/callback",
    response_model=TokenResponse,
    responses={**_ERRORS, 302: {"description": "Back to the client app (login_code, or code+state to link)"}},
    summary="Where the provider sends the user back",
)
async def callback(
    provider: Provider,
    bus: Bus,
    code: str | None = None,
    state: str | None = None,
    error: str | None = None,
) -> Response:
    return _answer(await _callback(bus, provider, code, state, error), 302)


@router.post(
    "/{provider}/callback",
    response_model=TokenResponse,
    responses={**_ERRORS, 303: {"description": "Back to the client app"}},
    summary="The callback for response_mode=form_post (Sign in with Apple)",
)
async def callback_form_post(
    provider: Provider,
    bus: Bus,
    code: Annotated[str | None, Form()] = None,
    state: Annotated[str | None, Form()] = None,
    error: Annotated[str | None, Form()] = None,
) -> Response:
    return _answer(await _callback(bus, provider, code, state, error), 303)


@router.post(
    "/{provider}/token",
    response_model=TokenResponse,
    responses=_ERRORS,
    summary="Exchange code+state, an identity token (Apple) or a one-time login code for tokens",
)
async def token(provider: Provider, body: OAuthTokenRequest, bus: Bus) -> TokenResponse:
    message: Message[Any]
    if body.login_code is not None:
        message = RedeemLoginCode(body.login_code)
    elif body.id_token is not None:
        message = ExchangeIdToken(provider, body.id_token, body.nonce)
    else:
        assert body.code is not None
        assert body.state is not None
        message = ExchangeOAuthCode(provider, body.code, body.state)
    return TokenResponse.of(await _handle(bus, message))


@router.post(
    "/link",
    response_model=LinkOut,
    responses={**_ERRORS, 409: {"description": "`provider_already_linked`"}},
    summary="Link a provider to the signed-in account (merging the account that had it)",
)
async def link(body: LinkRequest, bus: Bus, principal: Principal = Depends(current_principal)) -> LinkOut:
    result = await _handle(
        bus, LinkOAuth(principal.user_id, body.provider, body.code, body.state, body.id_token, body.nonce)
    )
    return LinkOut(user=UserOut.of(result.user), merged_from=result.merged_from)


@router.delete(
    "/unlink/{provider}",
    response_model=UnlinkOut,
    responses={
        404: {"description": "not linked / unknown provider"},
        409: {"description": "`last_identity`"},
    },
    summary="Unlink a provider from the signed-in account",
)
async def unlink(
    provider: Provider, bus: Bus, principal: Principal = Depends(current_principal)
) -> UnlinkOut:
    user = await _handle(bus, UnlinkOAuth(principal.user_id, provider))
    return UnlinkOut(user=UserOut.of(user), unlinked=provider)
