"""Phone sign-in rules: E.164 numbers, one-time codes (generated, kept only as an HMAC, checked a limited
number of times), the SMS text, the limits, and the messages the API sends to the bus.

Pure: no Redis, no AWS, no web framework. The code store and the SMS sender are ports (handlers.phone).
"""

from __future__ import annotations

import enum
import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass

import phonenumbers

from spendsense_auth.domain.accounts import LinkResult, SignInResult, User
from spendsense_shared.messagebus import Command

CODE_DIGITS = 6
MAX_PHONE_INPUT = 32  # longer than any formatted E.164 number; bounds the parser's work
# What a client may type: "+", digits and the usual separators. No letters (vanity numbers), no
# extensions, no look-alike Unicode digits: the number a user verifies is exactly the one shown.
_ALLOWED = re.compile(r"\+[0-9 ().\-]+")
_E164 = re.compile(r"\+[1-9][0-9]{1,14}")
_CODE = re.compile(r"[0-9]{6}")


class InvalidPhone(ValueError):
    """Not a valid phone number in international (E.164) form."""


def normalize_phone(raw: str) -> str:
    """``"+1 (415) 555-2671"`` → ``"+14155552671"``; raises :class:`InvalidPhone` for anything else."""
    if not isinstance(raw, str):
        raise InvalidPhone("a phone number is a string")
    text = raw.strip()
    if not text or len(text) > MAX_PHONE_INPUT:
        raise InvalidPhone(f"a phone number has at most {MAX_PHONE_INPUT} characters")
    if not _ALLOWED.fullmatch(text):
        raise InvalidPhone(
            "a phone number is in international form: '+', the country code and the number, e.g. +14155552671"
        )
    try:
        number = phonenumbers.parse(text, None)
    except phonenumbers.NumberParseException as exc:
        raise InvalidPhone("not a phone number in international form (e.g. +14155552671)") from exc
    if number.extension or not phonenumbers.is_valid_number(number):
        raise InvalidPhone("not a valid phone number")
    e164 = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
    if not _E164.fullmatch(e164):  # the library's guarantee, checked: what we store is always E.164
        raise InvalidPhone("not a valid phone number")
    return e164


def mask_phone(e164: str) -> str:
    """For logs and messages: the country code and the last two digits, ``+1********71``."""
    try:
        country = str(phonenumbers.parse(e164, None).country_code)
    except phonenumbers.NumberParseException:
        country = ""
    rest = e164[1 + len(country) :]
    return f"+{country}{'*' * max(len(rest) - 2, 0)}{rest[-2:]}"


def is_code_shaped(code: str) -> bool:
    return bool(_CODE.fullmatch(code))


def new_code() -> str:
    """Six digits from the operating system's CSPRNG (uniform over 000000 to 999999)."""
    return f"{secrets.randbelow(10**CODE_DIGITS):0{CODE_DIGITS}d}"


def code_digest(secret: bytes, phone: str, code: str) -> str:
    """What is stored instead of the code: HMAC-SHA256 keyed with the service's secret, over the
    number and the code (a stolen store reveals no code without the secret, and a digest is good for
    one number only)."""
    return hmac.new(secret, f"phone-code\0{phone}\0{code}".encode(), hashlib.sha256).hexdigest()


def sms_text(code: str, ttl_s: int) -> str:
    minutes = max(ttl_s // 60, 1)
    return f"Your SpendSense code is {code}. It expires in {minutes} minute{'s' if minutes != 1 else ''}."


class CodeCheck(enum.Enum):
    """The outcome of one attempt at a code."""

    ok = "ok"  # right code: it is consumed (single use)
    mismatch = "mismatch"  # wrong code: one attempt used
    locked = "locked"  # attempts exhausted: the code is burnt, even the right one is refused
    missing = "missing"  # no code for this number: never sent, expired, or already used


@dataclass(frozen=True)
class CheckResult:
    outcome: CodeCheck
    attempts_left: int = 0


@dataclass(frozen=True)
class PhonePolicy:
    """The limits (from settings)."""

    code_ttl_s: int = 600
    max_attempts: int = 3
    sms_per_hour: int = 5
    sms_per_day: int = 10
    sms_per_ip_per_hour: int = 20
    verify_per_ip_per_hour: int = 60


@dataclass(frozen=True)
class CodeSent:
    phone: str
    expires_in: int


# --- Messages for the bus --------------------------------------------------------------------------------


@dataclass(frozen=True)
class RequestPhoneCode(Command[CodeSent]):
    """Send a new code to the number (a new code replaces an outstanding one)."""

    phone: str  # E.164
    client_ip: str | None = None
    resend: bool = False


@dataclass(frozen=True)
class VerifyPhoneCode(Command[SignInResult]):
    """Sign in with a code (signing up when the number belongs to nobody)."""

    phone: str
    code: str
    client_ip: str | None = None


@dataclass(frozen=True)
class LinkPhone(Command[LinkResult]):
    """Add a verified number to the signed-in user (merging the account that held it, if any)."""

    user_id: str
    phone: str
    code: str
    client_ip: str | None = None


@dataclass(frozen=True)
class UnlinkPhone(Command[User]):
    user_id: str
