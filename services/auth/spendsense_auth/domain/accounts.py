"""Accounts, identities and sessions of the auth service: pure values and rules, no I/O.

A user signs in through one or more identities (a password, a phone number, an OAuth provider's
account); the tokens they receive carry their roles. Refresh tokens are opaque random strings kept only
as SHA-256 hashes, grouped in families: each use rotates the token, and reusing a rotated one revokes
its whole family.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, replace
from datetime import datetime
from typing import Any, Literal

from email_validator import EmailNotValidError, validate_email

Provider = Literal["password", "phone", "google", "github", "facebook", "apple"]
PROVIDERS: tuple[str, ...] = ("password", "phone", "google", "github", "facebook", "apple")
OAUTH_PROVIDERS: tuple[str, ...] = ("google", "github", "facebook", "apple")

RoleName = Literal["user", "operator", "admin"]
ROLES: tuple[str, ...] = ("user", "operator", "admin")  # ordered: each includes the ones before it
GRANTABLE_ROLES: tuple[str, ...] = ("operator", "admin")

USERNAME = re.compile(r"^[a-z0-9_.-]{3,32}$")


class AuthError(Exception):
    """A refusal with a stable code; routers turn it into ``ApiError`` through ``api.errors.api_error``."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        *,
        retry_after_s: int | None = None,
        details: Any = None,
    ):
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.retry_after_s = retry_after_s
        self.details = details


def invalid_credentials() -> AuthError:
    """The one answer to an unknown user and to a wrong password alike."""
    return AuthError(401, "invalid_credentials", "the email/username or password is not correct")


@dataclass(frozen=True)
class User:
    id: str
    email: str | None
    username: str | None
    roles: tuple[str, ...]
    created_at: datetime
    display_name: str | None = None

    def has_role(self, role: str) -> bool:
        return role in self.roles

    @property
    def is_admin(self) -> bool:
        return "admin" in self.roles


@dataclass(frozen=True)
class Identity:
    """A way in: ``subject`` is the lower-cased email for "password", the E.164 number for "phone",
    the provider's user id ("sub") for OAuth."""

    user_id: str
    provider: Provider
    subject: str
    email: str | None
    created_at: datetime


@dataclass(frozen=True)
class VerifiedIdentity:
    """What a phone or OAuth verification proved."""

    provider: Provider
    subject: str
    email: str | None = None
    email_verified: bool = False
    display_name: str | None = None


@dataclass(frozen=True)
class TokenPair:
    access_token: str
    refresh_token: str
    expires_in: int
    token_type: str = "bearer"


@dataclass(frozen=True)
class SignInResult:
    user: User
    tokens: TokenPair
    created: bool


@dataclass(frozen=True)
class LinkResult:
    user: User
    merged_from: str | None


@dataclass(frozen=True)
class RefreshSession:
    """One refresh token (by its hash) of a session family."""

    token_hash: str
    family_id: str
    user_id: str
    issued_at: datetime
    expires_at: datetime
    rotated_at: datetime | None = None
    revoked_at: datetime | None = None


def hash_refresh_token(token: str) -> str:
    """What is stored of a refresh token: its SHA-256 (the token is 256 random bits, no salt needed)."""
    return hashlib.sha256(token.encode()).hexdigest()


# --- emails and usernames ---------------------------------------------------------------------------


def normalize_email(email: str) -> str:
    """The address validated (syntax only, no DNS) and lower-cased; AuthError 422 when invalid."""
    try:
        return validate_email(email.strip(), check_deliverability=False).normalized.lower()
    except EmailNotValidError as exc:
        raise AuthError(
            422, "validation_error", f"email: {exc}", details=[{"field": "email", "reason": str(exc)}]
        ) from exc


_CONFIGURED_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+$")


def configured_email(email: str) -> str:
    """An address from configuration (the bootstrap admin): validated like a user's when it can be,
    else — a special-use domain such as ``.local`` of a local stack — only lower-cased."""
    address = try_normalize_email(email)
    if address is not None:
        return address
    if not _CONFIGURED_EMAIL.match(email.strip()):
        return normalize_email(email)  # raises, naming the problem
    return email.strip().lower()


def try_normalize_email(email: str) -> str | None:
    try:
        return normalize_email(email)
    except AuthError:
        return None


def check_username(username: str) -> str:
    """Usernames are lower-case ``^[a-z0-9_.-]{3,32}$`` (given in any case, stored lower-cased)."""
    name = username.strip().lower()
    if not USERNAME.match(name):
        reason = "3 to 32 characters: letters, digits, '_', '.' or '-'"
        raise AuthError(
            422, "validation_error", f"username: {reason}", details=[{"field": "username", "reason": reason}]
        )
    return name


# --- roles --------------------------------------------------------------------------------------------


def with_role(user: User, role: str) -> User:
    if role not in ROLES:
        raise AuthError(422, "validation_error", f"unknown role {role!r}")
    if role in user.roles:
        return user
    return replace(user, roles=tuple(r for r in ROLES if r in {*user.roles, role}))


def without_role(user: User, role: str) -> User:
    if role not in GRANTABLE_ROLES:
        raise AuthError(422, "validation_error", f"the {role!r} role cannot be removed")
    return replace(user, roles=tuple(r for r in user.roles if r != role))


def merged_user(target: User, source: User) -> User:
    """``target`` after absorbing ``source``: the higher roles of both, and what ``target`` lacks."""
    roles = tuple(r for r in ROLES if r in {*target.roles, *source.roles})
    return replace(
        target,
        roles=roles,
        email=target.email or source.email,
        username=target.username or source.username,
        display_name=target.display_name or source.display_name,
    )
