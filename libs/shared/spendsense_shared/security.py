"""Token verification (RS256 against the auth service's JWKS, cached) and FastAPI role/ownership checks."""

from __future__ import annotations

import asyncio
import copy
import enum
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

import httpx
import jwt
from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from spendsense_shared.http.deps import wired, wired_value
from spendsense_shared.http.errors import ApiError
from spendsense_shared.logging import get_logger

log = get_logger(__name__)


class Role(enum.IntEnum):
    """Ordered: a higher role includes every permission of the lower ones."""

    user = 1
    operator = 2
    admin = 3


@dataclass(frozen=True)
class Principal:
    user_id: str
    roles: frozenset[str]
    # What the token itself says (for logout: revoke this token and its session); not part of equality.
    token_id: str | None = field(default=None, compare=False)
    expires_at: int | None = field(default=None, compare=False)
    session_id: str | None = field(default=None, compare=False)

    @property
    def role(self) -> Role:
        known = [Role[r] for r in self.roles if r in Role.__members__]
        return max(known, default=Role.user)

    def has_role(self, role: Role) -> bool:
        return self.role >= role


class TokenError(Exception):
    pass


DEFAULT_ACCESS_TTL_S = 3600  # the auth service's default access-token lifetime (``access_token_ttl_s``)
VERIFIED_REUSE_S = 60.0  # how long a token's checked signature and shape are reused (not its expiry)
_VERIFIED_MAX = 20_000  # tokens remembered at most (then the memory starts afresh)
MAX_SUBJECT_CHARS = 128  # user ids are stored in 128-character columns everywhere
_TIME_CLAIMS = ("exp", "iat", "nbf")


class RevocationCheck(Protocol):
    """Access tokens revoked before their expiry (logout, a reused refresh token), by ``jti`` or by
    the session they belong to (``sid``); shared by every service."""

    async def is_revoked(self, jti: str, session_id: str | None = None) -> bool: ...


class TokenVerifier:
    """Verifies RS256 access tokens: signature by ``kid`` from a JWKS (fetched and cached), issuer,
    audience, expiry and — given a ``revocation`` check — that the token's ``jti`` was not revoked.
    Give ``jwks_url`` in services, or ``jwks`` (a dict) for a fixed key set.

    Validly signed tokens are checked for shape too: ``exp``, ``iat`` and ``nbf`` must be JSON integers
    (a numeric string is refused), ``iat`` not in the future, and the token may live no longer than
    the auth service issues them (``max_lifetime_s``, its access-token TTL, plus ``leeway_s``), both
    ``exp - iat`` and ``exp - now`` — so a key that signed a token "valid until the year 5000" does not
    make it so. ``sub`` must be a string of 1 to 128 characters.

    A token that passed these checks is remembered (by its whole text, signature included) for
    ``reuse_s``: the same token presented again within that time skips parsing it and checking its
    signature (PyJWT's parsing was most of a cached read's CPU), but its expiry is judged again every
    time, and so is its revocation. A new key set forgets them all."""

    def __init__(
        self,
        *,
        issuer: str,
        audience: str,
        jwks_url: str | None = None,
        jwks: dict[str, Any] | None = None,
        cache_ttl_s: float = 300,
        leeway_s: float = 30,
        revocation: RevocationCheck | None = None,
        max_lifetime_s: float = DEFAULT_ACCESS_TTL_S,
        reuse_s: float = VERIFIED_REUSE_S,
        clock: Callable[[], float] = time.time,
    ):
        if not jwks_url and jwks is None:
            raise ValueError("a TokenVerifier needs jwks_url or jwks")
        self.issuer = issuer
        self.audience = audience
        self.jwks_url = jwks_url
        self.cache_ttl_s = cache_ttl_s
        self.leeway_s = leeway_s
        self.revocation = revocation
        self.max_lifetime_s = max_lifetime_s
        self.reuse_s = reuse_s
        self.clock = clock
        self._verified: dict[str, tuple[float, dict[str, Any]]] = {}  # token → (checked at, claims)
        self._keys: dict[str, Any] = {}
        self._fetched_at = 0.0
        self._lock = asyncio.Lock()
        if jwks is not None:
            self._keys = _parse_jwks(jwks)
            self._fetched_at = float("inf")

    def with_revocation(self, revocation: RevocationCheck) -> TokenVerifier:
        """The same verifier (same keys) that also refuses revoked tokens."""
        verifier = copy.copy(self)
        verifier.revocation = revocation
        return verifier

    async def _key(self, kid: str) -> Any:
        fresh = time.monotonic() - self._fetched_at < self.cache_ttl_s
        if kid in self._keys and fresh:
            return self._keys[kid]
        if self.jwks_url:
            async with self._lock:
                # Refetch when stale, or when a new kid appears (key rotation) at most every 10 s. Judged
                # again under the lock: the requests that queued behind a refetch use its keys rather
                # than each fetching them once more.
                age = time.monotonic() - self._fetched_at
                if age >= self.cache_ttl_s or (kid not in self._keys and age > 10):
                    await self._refresh()
        if kid not in self._keys:
            raise TokenError("unknown signing key")
        return self._keys[kid]

    async def _refresh(self) -> None:
        assert self.jwks_url
        try:
            async with httpx.AsyncClient(timeout=5) as client:
                response = await client.get(self.jwks_url)
                response.raise_for_status()
            self._keys = _parse_jwks(response.json())
            self._fetched_at = time.monotonic()
            self._verified.clear()  # a key may be gone: its tokens are checked afresh
        except (httpx.HTTPError, ValueError) as exc:
            log.warning("jwks_fetch_failed", error=str(exc))
            if not self._keys:
                raise TokenError("signing keys unavailable") from exc

    async def verify(self, token: str) -> Principal:
        claims = self._recently_verified(token)
        if claims is None:
            claims = await self._checked_claims(token)
            self._remember(token, claims)
        jti, sid = claims.get("jti"), claims.get("sid")
        if self.revocation is not None and jti:
            try:
                revoked = await self.revocation.is_revoked(str(jti), str(sid) if sid else None)
            except Exception as exc:  # fail closed: a token we cannot check is not trusted
                log.warning("revocation_check_failed", error=str(exc))
                raise TokenError("token revocation cannot be checked") from exc
            if revoked:
                raise TokenError("token revoked")
        roles = claims.get("roles") or ["user"]
        return Principal(
            user_id=str(claims["sub"]),
            roles=frozenset(str(r) for r in roles),
            token_id=str(jti) if jti else None,
            expires_at=int(claims["exp"]),
            session_id=str(sid) if sid else None,
        )

    def _recently_verified(self, token: str) -> dict[str, Any] | None:
        """The claims of ``token`` if it passed every check within ``reuse_s``; its expiry is judged now
        (as PyJWT does: expired once ``exp`` is ``leeway_s`` in the past)."""
        known = self._verified.get(token)
        if known is None:
            return None
        now = self.clock()
        checked_at, claims = known
        if now - checked_at >= self.reuse_s:
            del self._verified[token]
            return None
        if claims["exp"] <= now - self.leeway_s:
            raise TokenError("token expired")
        return claims

    def _remember(self, token: str, claims: dict[str, Any]) -> None:
        if self.reuse_s <= 0:
            return
        if len(self._verified) >= _VERIFIED_MAX:
            self._verified.clear()
        self._verified[token] = (self.clock(), claims)

    async def _checked_claims(self, token: str) -> dict[str, Any]:
        """The claims of ``token`` once its signature, issuer, audience, times and shape are checked."""
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError as exc:
            raise TokenError("malformed token") from exc
        if header.get("alg") != "RS256":
            raise TokenError("unsupported algorithm")
        key = await self._key(str(header.get("kid", "")))
        try:
            claims = jwt.decode(
                token,
                key,
                algorithms=["RS256"],
                audience=self.audience,
                issuer=self.issuer,
                leeway=self.leeway_s,
                options={"require": ["exp", "iat", "sub"]},
            )
        except jwt.ExpiredSignatureError as exc:
            raise TokenError("token expired") from exc
        except jwt.PyJWTError as exc:
            raise TokenError(f"invalid token: {exc}") from exc
        self._check_shape(claims)
        if claims.get("typ", "access") != "access":
            raise TokenError("not an access token")
        return dict(claims)

    def _check_shape(self, claims: dict[str, Any]) -> None:
        """What the signature cannot vouch for: the claims' types and a lifetime the issuer never gives."""
        for name in _TIME_CLAIMS:
            value = claims.get(name)
            if name in claims and (type(value) is not int):
                raise TokenError(f"invalid token: {name} must be an integer NumericDate")
        now = datetime.now(UTC).timestamp()
        exp, iat = claims["exp"], claims["iat"]
        if iat > now + self.leeway_s:
            raise TokenError("invalid token: issued in the future")
        longest = self.max_lifetime_s + self.leeway_s
        if exp - iat > longest or exp - now > longest:
            raise TokenError("invalid token: lifetime exceeds what the issuer grants")
        subject = claims["sub"]
        if not isinstance(subject, str) or not 0 < len(subject) <= MAX_SUBJECT_CHARS:
            raise TokenError(f"invalid token: sub must be a string of 1 to {MAX_SUBJECT_CHARS} characters")


def _parse_jwks(jwks: dict[str, Any]) -> dict[str, Any]:
    keys = {}
    for jwk in jwks.get("keys", []):
        if jwk.get("kty") == "RSA" and jwk.get("kid"):
            keys[jwk["kid"]] = jwt.algorithms.RSAAlgorithm.from_jwk(jwk)
    return keys


class ConsentLookup(Protocol):
    """A service's own view of whether a user's consent is current (its projection of consent events).
    A lookup may also offer ``standing(user_id) -> ConsentStanding``: both answers in one read (one
    connection, one query), which the access checks then use instead of the two calls."""

    async def has_current_consent(self, user_id: str) -> bool: ...

    async def is_erased(self, user_id: str) -> bool: ...


@dataclass(frozen=True)
class ConsentStanding:
    """What the access checks need to know about a user, read together."""

    erased: bool  # gone: 404 for everyone
    current: bool  # their consent is current (never true of an erased user)


async def _standing(request: Request, consent: ConsentLookup, user_id: str) -> ConsentStanding | None:
    """The user's standing from a lookup that reads both answers at once (else None), read once per
    request: both access checks of a route ask for it."""
    read_both = getattr(consent, "standing", None)
    if read_both is None:
        return None
    known: tuple[str, ConsentStanding] | None = getattr(request.state, "consent_standing", None)
    if known is not None and known[0] == user_id:
        return known[1]
    standing: ConsentStanding = await read_both(user_id)
    request.state.consent_standing = (user_id, standing)
    return standing


async def _is_erased(request: Request, consent: ConsentLookup, user_id: str) -> bool:
    standing = await _standing(request, consent, user_id)
    return standing.erased if standing is not None else await consent.is_erased(user_id)


async def _has_current_consent(request: Request, consent: ConsentLookup, user_id: str) -> bool:
    standing = await _standing(request, consent, user_id)
    return standing.current if standing is not None else await consent.has_current_consent(user_id)


_bearer = HTTPBearer(auto_error=False)


@wired
async def token_verifier(request: Request) -> TokenVerifier:
    """The app's verifier: a FastAPI dependency whose value ``build_app`` provides."""
    verifier: TokenVerifier = wired_value(request, token_verifier)
    return verifier


@wired
async def consent_lookup(request: Request) -> ConsentLookup | None:
    """The service's consent view (``build_app`` provides it); None: nobody else's data is reachable."""
    lookup: ConsentLookup | None = wired_value(request, consent_lookup, None)
    return lookup


async def current_principal(
    request: Request,
    credentials: HTTPAuthorizationCredentials | None = Depends(_bearer),
    verifier: TokenVerifier = Depends(token_verifier),
) -> Principal:
    if credentials is None or credentials.scheme.lower() != "bearer":
        raise ApiError(
            401, "unauthorized", "a bearer token is required", headers={"WWW-Authenticate": "Bearer"}
        )
    try:
        principal = await verifier.verify(credentials.credentials)
    except TokenError as exc:
        raise ApiError(401, "unauthorized", str(exc), headers={"WWW-Authenticate": "Bearer"}) from exc
    request.state.principal = principal
    return principal


def require_role(role: Role) -> Callable[..., Awaitable[Principal]]:
    async def dependency(principal: Principal = Depends(current_principal)) -> Principal:
        if not principal.has_role(role):
            log.warning("access_denied", reason="role", needed=role.name, user=principal.user_id)
            raise ApiError(403, "forbidden", f"requires the {role.name} role")
        return principal

    return dependency


async def require_user_access(
    user_id: str,
    request: Request,
    principal: Principal = Depends(current_principal),
    consent: ConsentLookup | None = Depends(consent_lookup),
) -> Principal:
    """This user themself, or an operator/admin while the user's consent is current (denials logged).
    An erased user is gone: 404 for whoever may have seen them."""
    if principal.user_id != user_id and not principal.has_role(Role.operator):
        log.warning("access_denied", reason="not_owner", actor=principal.user_id)
        raise ApiError(403, "forbidden", "you may access only your own data")
    if consent is not None and await _is_erased(request, consent, user_id):
        raise ApiError(404, "not_found", "no such user")
    if principal.user_id == user_id:
        return principal
    if consent is None or not await _has_current_consent(request, consent, user_id):
        log.warning(
            "access_denied", reason="consent_required", actor=principal.user_id, role=principal.role.name
        )
        raise ApiError(403, "consent_required", "the user has not given current consent")
    return principal


async def require_consented_user_access(
    user_id: str,
    request: Request,
    principal: Principal = Depends(require_user_access),
    consent: ConsentLookup | None = Depends(consent_lookup),
) -> Principal:
    """As :func:`require_user_access`, and the data exists only for a user with current consent —
    so the user themself is refused too once consent is revoked."""
    if principal.user_id == user_id and (
        consent is None or not await _has_current_consent(request, consent, user_id)
    ):
        raise ApiError(403, "consent_required", "processing requires your current consent")
    return principal
