"""Request and response bodies of the auth API (SPEC §9 shapes: extend, don't break)."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from spendsense_auth.domain.accounts import Identity, SignInResult, User
from spendsense_shared.text import StoredText


class TokenUser(BaseModel):
    id: str
    email: str | None
    roles: list[str]


class TokenResponse(BaseModel):
    access_token: str
    refresh_token: str
    token_type: str = "bearer"
    expires_in: int
    user: TokenUser

    @classmethod
    def of(cls, result: SignInResult) -> TokenResponse:
        return cls(
            access_token=result.tokens.access_token,
            refresh_token=result.tokens.refresh_token,
            token_type=result.tokens.token_type,
            expires_in=result.tokens.expires_in,
            user=TokenUser(id=result.user.id, email=result.user.email, roles=list(result.user.roles)),
        )


class IdentityOut(BaseModel):
    provider: str
    created_at: datetime

    @classmethod
    def of(cls, identity: Identity) -> IdentityOut:
        return cls(provider=identity.provider, created_at=identity.created_at)


class UserOut(BaseModel):
    id: str
    email: str | None
    username: str | None
    display_name: str | None
    roles: list[str]
    created_at: datetime
    identities: list[IdentityOut] | None = None

    @classmethod
    def of(cls, user: User, identities: list[Identity] | None = None) -> UserOut:
        return cls(
            id=user.id,
            email=user.email,
            username=user.username,
            display_name=user.display_name,
            roles=list(user.roles),
            created_at=user.created_at,
            identities=None if identities is None else [IdentityOut.of(i) for i in identities],
        )


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class RegisterRequest(_Body):
    email: StoredText = Field(min_length=3, max_length=320)
    password: StoredText = Field(max_length=1024)
    username: StoredText | None = Field(None, max_length=64)


class LoginRequest(_Body):
    email: StoredText | None = Field(None, max_length=320)
    username: StoredText | None = Field(None, max_length=64)
    password: StoredText = Field(max_length=1024)

    @model_validator(mode="after")
    def _one_login(self) -> LoginRequest:
        if (self.email is None) == (self.username is None):
            raise ValueError("give either email or username")
        return self


class RefreshRequest(_Body):
    refresh_token: str = Field(min_length=1, max_length=512)


class LogoutRequest(_Body):
    refresh_token: str | None = Field(None, max_length=512)


class CreateUserRequest(_Body):
    email: str | None = Field(None, max_length=320)
    password: str | None = Field(None, max_length=1024)
    username: str | None = Field(None, max_length=64)
    display_name: str | None = Field(None, max_length=200)


class UpdateUserRequest(_Body):
    email: str | None = Field(None, max_length=320)
    username: str | None = Field(None, max_length=64)
    display_name: str | None = Field(None, max_length=200)


class RoleRequest(_Body):
    role: Literal["operator", "admin"]
