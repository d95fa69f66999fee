"""Every use case the API calls, as a message for the bus: commands change state, queries read it.
The type parameter is what the handler returns."""

from __future__ import annotations

from dataclasses import dataclass, field

from spendsense_auth.domain.accounts import Identity, SignInResult, User
from spendsense_auth.domain.erasure import ErasureProgress
from spendsense_shared.messagebus import Command, Query


@dataclass(frozen=True)
class RateLimits:
    """Attempts allowed per window (fixed windows in Redis)."""

    login_per_account: int = 10
    login_per_ip: int = 30
    login_window_s: int = 60
    register_per_account: int = 5
    register_per_ip: int = 10
    register_window_s: int = 3600


@dataclass(frozen=True)
class Register(Command[SignInResult]):
    email: str
    password: str = field(repr=False)
    username: str | None = None
    client_ip: str = "unknown"


@dataclass(frozen=True)
class Login(Command[SignInResult]):
    """With ``email`` or ``username``."""

    password: str = field(repr=False)
    email: str | None = None
    username: str | None = None
    client_ip: str = "unknown"


@dataclass(frozen=True)
class RefreshTokens(Command[SignInResult]):
    refresh_token: str = field(repr=False)


@dataclass(frozen=True)
class Logout(Command[None]):
    """Revoke the access token (``jti`` until ``expires_at``, epoch seconds) and its session family
    (``session_id``), and the family of ``refresh_token`` when given."""

    user_id: str
    jti: str | None
    expires_at: int | None
    session_id: str | None = None
    refresh_token: str | None = field(default=None, repr=False)


@dataclass(frozen=True)
class CreateUser(Command[User]):
    """An admin creates an account (batch imports); email and password optional."""

    actor_id: str
    email: str | None = None
    password: str | None = field(default=None, repr=False)
    username: str | None = None
    display_name: str | None = None


@dataclass(frozen=True)
class UserView:
    user: User
    identities: list[Identity]


@dataclass(frozen=True)
class GetUser(Query[UserView | None]):
    user_id: str


@dataclass(frozen=True)
class UpdateUser(Command[User]):
    """None leaves a field unchanged."""

    user_id: str
    actor_id: str
    email: str | None = None
    username: str | None = None
    display_name: str | None = None


@dataclass(frozen=True)
class GrantRole(Command[User]):
    actor_id: str
    user_id: str
    role: str


@dataclass(frozen=True)
class RevokeRole(Command[User]):
    """Never the last admin's admin role."""

    actor_id: str
    user_id: str
    role: str


@dataclass(frozen=True)
class GetErasure(Query[ErasureProgress | None]):
    """The progress of a user's erasure (looked up by the pseudonym of ``user_id``)."""

    user_id: str


@dataclass(frozen=True)
class ListIncompleteErasures(Query[list[ErasureProgress]]):
    limit: int = 100
