"""RS256 access tokens signed by the current key, opaque refresh tokens, and the key ring the JWKS
serves (the current key and the previous ones, so tokens signed before a rotation still verify)."""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field
from typing import Any

from spendsense_auth.domain.accounts import TokenPair, User
from spendsense_auth.handlers.ports import Clock, SystemClock, TokenIssuer
from spendsense_shared.jwk import SigningKey


@dataclass(frozen=True)
class KeyRing:
    current: SigningKey
    previous: tuple[dict[str, str], ...] = field(default=())  # public JWKs of earlier keys

    def jwks(self) -> dict[str, Any]:
        keys = [self.current.public_jwk]
        keys += [k for k in self.previous if k["kid"] != self.current.kid]
        return {"keys": keys}


class JwtTokenIssuer(TokenIssuer):
    def __init__(
        self,
        key: SigningKey,
        *,
        issuer: str,
        audience: str,
        access_ttl_s: int,
        refresh_ttl_s: int,
        clock: Clock | None = None,
    ):
        self.key = key
        self.issuer = issuer
        self.audience = audience
        self.access_ttl_s = access_ttl_s
        self.refresh_ttl_s = refresh_ttl_s
        self.clock = clock or SystemClock()

    def issue(self, user: User, family_id: str | None = None) -> TokenPair:
        access = self.key.sign(
            user.id,
            roles=list(user.roles),
            issuer=self.issuer,
            audience=self.audience,
            ttl_s=self.access_ttl_s,
            token_type="access",
            extra={"sid": family_id} if family_id else None,
        )
        return TokenPair(
            access_token=access, refresh_token=secrets.token_urlsafe(32), expires_in=self.access_ttl_s
        )
