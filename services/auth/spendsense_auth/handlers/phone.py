"""Use cases of phone sign-in: send a code, verify it (sign in or up), link and unlink a number.

The ports of phone verification (the code store, the SMS sender) are declared here; ``bootstrap`` hands
in their Redis and SNS adapters, tests their in-memory fakes.
"""

from __future__ import annotations

import abc
from dataclasses import dataclass, field

from spendsense_auth.domain import phone as rules
from spendsense_auth.domain.accounts import AuthError, LinkResult, SignInResult, User, VerifiedIdentity
from spendsense_auth.domain.phone import (
    CheckResult,
    CodeCheck,
    CodeSent,
    LinkPhone,
    PhonePolicy,
    RequestPhoneCode,
    UnlinkPhone,
    VerifyPhoneCode,
)
from spendsense_auth.handlers.identities import link_identity, sign_in_with_identity, unlink_identity
from spendsense_auth.handlers.ports import RateLimiter, TokenIssuer
from spendsense_auth.handlers.unit_of_work import AuthUnitOfWork
from spendsense_shared.logging import get_logger

log = get_logger(__name__)

HOUR = 3600
DAY = 24 * HOUR


class PhoneCodeStore(abc.ABC):
    """Outstanding codes, by number, kept only as digests and only for their lifetime."""

    @abc.abstractmethod
    async def put(self, phone: str, digest: str, ttl_s: int) -> None:
        """Store a new code for the number, replacing any outstanding one (its attempts start at 0)."""

    @abc.abstractmethod
    async def check(self, phone: str, digest: str, max_attempts: int) -> CheckResult:
        """One attempt, atomically: counts it, burns the code once the attempts are used up, and
        consumes it on a match (so a code verifies at most once, even under concurrent attempts)."""

    @abc.abstractmethod
    async def discard(self, phone: str) -> None:
        """Forget the outstanding code (it could not be delivered)."""


class SmsDeliveryError(Exception):
    """The SMS provider did not accept the message."""


class SmsSender(abc.ABC):
    @abc.abstractmethod
    async def send(self, phone: str, message: str) -> None:
        """Send one SMS or raise :class:`SmsDeliveryError`. Never logs the message or the full number."""


@dataclass(frozen=True)
class PhoneVerification:
    """What the phone use cases need besides the unit of work: built once by ``bootstrap``."""

    codes: PhoneCodeStore
    sms: SmsSender
    limiter: RateLimiter
    secret: bytes  # the HMAC key of the stored digests
    policy: PhonePolicy = field(default_factory=PhonePolicy)


async def request_code(cmd: RequestPhoneCode, phone: PhoneVerification) -> CodeSent:
    """Limits first (per client address, then per number and hour, then per number and day), so a
    refused request neither sends nor replaces anything."""
    policy = phone.policy
    if cmd.client_ip:
        await phone.limiter.hit("phone_sms_ip", cmd.client_ip, policy.sms_per_ip_per_hour, HOUR)
    await phone.limiter.hit("phone_sms_hour", cmd.phone, policy.sms_per_hour, HOUR)
    await phone.limiter.hit("phone_sms_day", cmd.phone, policy.sms_per_day, DAY)
    code = rules.new_code()
    # Stored before it is sent: a user who types it the moment it arrives finds it there.
    await phone.codes.put(cmd.phone, rules.code_digest(phone.secret, cmd.phone, code), policy.code_ttl_s)
    try:
        await phone.sms.send(cmd.phone, rules.sms_text(code, policy.code_ttl_s))
    except SmsDeliveryError as exc:
        await phone.codes.discard(cmd.phone)
        raise AuthError(503, "sms_unavailable", "the code could not be sent; try again shortly") from exc
    log.info("phone_code_sent", phone=rules.mask_phone(cmd.phone), resend=cmd.resend)
    return CodeSent(phone=cmd.phone, expires_in=policy.code_ttl_s)


async def _check(phone: PhoneVerification, number: str, code: str, client_ip: str | None) -> None:
    """Raises unless ``code`` is the number's outstanding code (which this consumes)."""
    policy = phone.policy
    if client_ip:
        await phone.limiter.hit("phone_verify_ip", client_ip, policy.verify_per_ip_per_hour, HOUR)
    # A malformed code still costs an attempt: it is a guess like any other.
    digest = rules.code_digest(phone.secret, number, code) if rules.is_code_shaped(code) else ""
    result = await phone.codes.check(number, digest, policy.max_attempts)
    masked = rules.mask_phone(number)
    if result.outcome is CodeCheck.ok:
        log.info("phone_code_verified", phone=masked)
        return
    log.warning("phone_code_refused", phone=masked, outcome=result.outcome.value)
    if result.outcome is CodeCheck.locked:
        raise AuthError(429, "code_locked", "too many wrong attempts: this code is void; request a new one")
    if result.outcome is CodeCheck.missing:
        raise AuthError(
            400, "code_expired", "no code is pending for this number (expired or already used); request one"
        )
    left = result.attempts_left
    raise AuthError(400, "invalid_code", f"wrong code ({left} attempt{'s' if left != 1 else ''} left)")


async def verify_code(
    cmd: VerifyPhoneCode, uow: AuthUnitOfWork, tokens: TokenIssuer, phone: PhoneVerification
) -> SignInResult:
    await _check(phone, cmd.phone, cmd.code, cmd.client_ip)
    result = await sign_in_with_identity(uow, tokens, VerifiedIdentity(provider="phone", subject=cmd.phone))
    log.info("phone_sign_in", user_id=result.user.id, created=result.created)
    return result


async def link_phone(cmd: LinkPhone, uow: AuthUnitOfWork, phone: PhoneVerification) -> LinkResult:
    # Refusals that do not depend on the code come first, so they do not burn it.
    async with uow:
        if await uow.users.get(cmd.user_id) is None:
            raise AuthError(404, "not_found", "no such user")
        mine = await uow.users.identities(cmd.user_id)
    if any(i.provider == "phone" and i.subject != cmd.phone for i in mine):
        raise AuthError(
            409, "provider_already_linked", "this account already has a phone number; unlink it first"
        )
    await _check(phone, cmd.phone, cmd.code, cmd.client_ip)
    result = await link_identity(uow, cmd.user_id, VerifiedIdentity(provider="phone", subject=cmd.phone))
    log.info("phone_linked", user_id=cmd.user_id, merged_from=result.merged_from)
    return result


async def unlink_phone(cmd: UnlinkPhone, uow: AuthUnitOfWork) -> User:
    user = await unlink_identity(uow, cmd.user_id, "phone")
    log.info("phone_unlinked", user_id=cmd.user_id)
    return user
