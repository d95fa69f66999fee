"""``/api/v1/auth``: register, login, refresh and logout with an email (or username) and a password."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends, Response

from spendsense_auth.api.deps import ClientIp
from spendsense_auth.api.errors import api_error
from spendsense_auth.api.schemas import (
    LoginRequest,
    LogoutRequest,
    RefreshRequest,
    RegisterRequest,
    TokenResponse,
)
from spendsense_auth.domain.accounts import AuthError
from spendsense_auth.domain.commands import Login, Logout, RefreshTokens, Register
from spendsense_shared.http.deps import Bus
from spendsense_shared.messagebus import Message
from spendsense_shared.security import Principal, current_principal

router = APIRouter(prefix="/api/v1/auth", tags=["auth"])

_ERRORS: dict[int | str, dict[str, Any]] = {
    401: {
        "description": (
            "`invalid_credentials`, `invalid_token`, `token_reused`, `token_revoked`, `token_expired`"
        )
    },
    409: {"description": "`email_taken` or `username_taken`"},
    422: {"description": "`validation_error` or `weak_password` (every failed rule in `details`)"},
    429: {"description": "`rate_limited`, with `Retry-After`"},
}


async def handle(bus: Bus, message: Message[Any]) -> Any:
    try:
        return await bus.handle(message)
    except AuthError as exc:
        raise api_error(exc) from exc


@router.post(
    "/register", status_code=201, response_model=TokenResponse, responses=_ERRORS, summary="Create an account"
)
async def register(body: RegisterRequest, bus: Bus, ip: ClientIp) -> TokenResponse:
    result = await handle(
        bus, Register(email=body.email, password=body.password, username=body.username, client_ip=ip)
    )
    return TokenResponse.of(result)


@router.post("/login", response_model=TokenResponse, responses=_ERRORS, summary="Sign in with a password")
async def login(body: LoginRequest, bus: Bus, ip: ClientIp) -> TokenResponse:
    result = await handle(
        bus, Login(password=body.password, email=body.email, username=body.username, client_ip=ip)
    )
    return TokenResponse.of(result)


@router.post(
    "/refresh",
    response_model=TokenResponse,
    responses=_ERRORS,
    summary="Rotate a refresh token for new tokens",
)
async def refresh(body: RefreshRequest, bus: Bus) -> TokenResponse:
    return TokenResponse.of(await handle(bus, RefreshTokens(refresh_token=body.refresh_token)))


@router.post(
    "/logout",
    status_code=204,
    summary="Revoke this access token and its session (and a given refresh token's)",
)
async def logout(
    bus: Bus, body: LogoutRequest | None = None, principal: Principal = Depends(current_principal)
) -> Response:
    await handle(
        bus,
        Logout(
            user_id=principal.user_id,
            jti=principal.token_id,
            expires_at=principal.expires_at,
            session_id=principal.session_id,
            refresh_token=body.refresh_token if body else None,
        ),
    )
    return Response(status_code=204)
