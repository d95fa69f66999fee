"""``/api/v1/auth/phone``: sign in (or up) with an SMS code; link and unlink a verified number."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends
from pydantic import BaseModel, ConfigDict, Field, field_validator

from spendsense_auth.api.deps import ClientIp
from spendsense_auth.api.errors import api_error
from spendsense_auth.api.schemas import TokenResponse, UserOut
from spendsense_auth.domain.accounts import AuthError
from spendsense_auth.domain.phone import (
    LinkPhone,
    RequestPhoneCode,
    UnlinkPhone,
    VerifyPhoneCode,
    is_code_shaped,
    normalize_phone,
)
from spendsense_shared.http.deps import Bus
from spendsense_shared.messagebus import Message
from spendsense_shared.security import Principal, current_principal

router = APIRouter(prefix="/api/v1/auth/phone", tags=["auth: phone"])

_RATE_LIMITED = {"description": "Too many requests (`rate_limited`, with `Retry-After`) or `code_locked`"}


class PhoneBody(BaseModel):
    model_config = ConfigDict(extra="forbid")

    phone: str = Field(
        max_length=64, description="International (E.164) form; separators allowed", examples=["+14155552671"]
    )

    @field_validator("phone")
    @classmethod
    def _e164(cls, value: str) -> str:
        return normalize_phone(value)  # InvalidPhone is a ValueError: 422 naming the field


class PhoneCodeBody(PhoneBody):
    code: str = Field(max_length=16, description="The 6-digit code from the SMS", examples=["123456"])

    @field_validator("code")
    @classmethod
    def _six_digits(cls, value: str) -> str:
        code = value.strip()
        if not is_code_shaped(code):
            raise ValueError("the code is the 6 digits from the SMS")
        return code


class CodeSentOut(BaseModel):
    phone: str  # the number as normalized (E.164)
    expires_in: int  # seconds


class LinkOut(BaseModel):
    user: UserOut
    merged_from: str | None  # the account merged into this one, if the number belonged to another


class UnlinkOut(BaseModel):
    user: UserOut


async def _handle(bus: Bus, message: Message[Any]) -> Any:
    try:
        return await bus.handle(message)
    except AuthError as exc:
        raise api_error(exc) from exc


@router.post(
    "/request",
    status_code=202,
    response_model=CodeSentOut,
    summary="Send a sign-in code by SMS",
    responses={429: _RATE_LIMITED},
)
async def request_code(body: PhoneBody, bus: Bus, ip: ClientIp) -> CodeSentOut:
    sent = await _handle(bus, RequestPhoneCode(phone=body.phone, client_ip=ip))
    return CodeSentOut(phone=sent.phone, expires_in=sent.expires_in)


@router.post(
    "/resend",
    status_code=202,
    response_model=CodeSentOut,
    summary="Send a new code (the previous one stops working)",
    responses={429: _RATE_LIMITED},
)
async def resend_code(body: PhoneBody, bus: Bus, ip: ClientIp) -> CodeSentOut:
    sent = await _handle(bus, RequestPhoneCode(phone=body.phone, client_ip=ip, resend=True))
    return CodeSentOut(phone=sent.phone, expires_in=sent.expires_in)


@router.post(
    "/verify",
    response_model=TokenResponse,
    summary="Sign in with the SMS code (a new account when the number is new)",
    responses={429: _RATE_LIMITED},
)
async def verify_code(body: PhoneCodeBody, bus: Bus, ip: ClientIp) -> TokenResponse:
    result = await _handle(bus, VerifyPhoneCode(phone=body.phone, code=body.code, client_ip=ip))
    return TokenResponse.of(result)


@router.post(
    "/link",
    response_model=LinkOut,
    summary="Add a verified number to the signed-in account (merging the account that held it)",
    responses={429: _RATE_LIMITED},
)
async def link_phone(
    body: PhoneCodeBody, bus: Bus, ip: ClientIp, principal: Principal = Depends(current_principal)
) -> LinkOut:
    result = await _handle(
        bus,
        LinkPhone(user_id=principal.user_id, phone=body.phone, code=body.code, client_ip=ip),
    )
    return LinkOut(user=UserOut.of(result.user), merged_from=result.merged_from)


@router.delete(
    "/unlink", response_model=UnlinkOut, summary="Remove the account's phone number (never the last way in)"
)
async def unlink_phone(bus: Bus, principal: Principal = Depends(current_principal)) -> UnlinkOut:
    user = await _handle(bus, UnlinkPhone(user_id=principal.user_id))
    return UnlinkOut(user=UserOut.of(user))
