"""Email + password accounts and sessions: register, login, refresh (rotation, reuse detection), logout."""

from __future__ import annotations

from spendsense_auth.domain.accounts import (
    AuthError,
    Identity,
    SignInResult,
    User,
    check_username,
    hash_refresh_token,
    invalid_credentials,
    normalize_email,
    try_normalize_email,
)
from spendsense_auth.domain.commands import Login, Logout, RateLimits, RefreshTokens, Register
from spendsense_auth.domain.passwords import PasswordPolicy
from spendsense_auth.handlers.identities import create_user
from spendsense_auth.handlers.ports import PasswordHasher, RateLimiter, RevokedTokens, TokenIssuer
from spendsense_auth.handlers.sessions import start_session
from spendsense_auth.handlers.unit_of_work import AuthUnitOfWork
from spendsense_shared.logging import get_logger

log = get_logger(__name__)

REVOCATION_LEEWAY_S = 60  # verifiers accept a token a little past its exp: keep it listed that long too


async def ensure_available(uow: AuthUnitOfWork, email: str | None, username: str | None) -> None:
    if email is not None and await uow.users.by_email(email) is not None:
        raise AuthError(409, "email_taken", "an account with this email already exists")
    if username is not None and await uow.users.by_username(username) is not None:
        raise AuthError(409, "username_taken", "this username is taken")


async def register(
    cmd: Register,
    uow: AuthUnitOfWork,
    *,
    hasher: PasswordHasher,
    tokens: TokenIssuer,
    policy: PasswordPolicy,
    limiter: RateLimiter,
    limits: RateLimits,
) -> SignInResult:
    await limiter.hit("register-ip", cmd.client_ip, limits.register_per_ip, limits.register_window_s)
    email = normalize_email(cmd.email)
    username = check_username(cmd.username) if cmd.username is not None else None
    await limiter.hit("register-account", email, limits.register_per_account, limits.register_window_s)
    policy.check(cmd.password)
    async with uow:  # refuse a taken email before spending a bcrypt hash on it
        await ensure_available(uow, email, username)
    password_hash = await hasher.hash(cmd.password)
    async with uow:
        await ensure_available(uow, email, username)
        user = await create_user(
            uow, tokens.clock, email=email, username=username, password_hash=password_hash, via="password"
        )
        await uow.users.add_identity(
            Identity(
                user_id=user.id, provider="password", subject=email, email=email, created_at=user.created_at
            )
        )
        pair = await start_session(uow, tokens, user)
        await uow.commit()
    log.info("user_registered", user=user.id, via="password")
    return SignInResult(user=user, tokens=pair, created=True)


async def login(
    cmd: Login,
    uow: AuthUnitOfWork,
    *,
    hasher: PasswordHasher,
    tokens: TokenIssuer,
    limiter: RateLimiter,
    limits: RateLimits,
) -> SignInResult:
    account = (cmd.email or cmd.username or "").strip().lower()
    await limiter.hit("login-ip", cmd.client_ip, limits.login_per_ip, limits.login_window_s)
    await limiter.hit("login-account", account, limits.login_per_account, limits.login_window_s)
    user: User | None = None
    password_hash: str | None = None
    async with uow:
        if cmd.email is not None:
            # configured_email: the bootstrap admin's address may be on a special-use domain (.local).
            email = try_normalize_email(cmd.email) or cmd.email.strip().lower()
            user = await uow.users.by_email(email)
        elif cmd.username is not None:
            user = await uow.users.by_username(account)
        if user is not None:
            password_hash = await uow.users.password_hash(user.id)
    # Always one bcrypt verify (against a dummy hash when there is no account or no password), so an
    # unknown account and a wrong password cost the same time and get the same answer.
    ok = await hasher.verify(cmd.password, password_hash)
    if user is None or password_hash is None or not ok:
        log.warning("login_failed", user=user.id if user else None, reason="invalid_credentials")
        raise invalid_credentials()
    async with uow:
        pair = await start_session(uow, tokens, user)
        await uow.commit()
    log.info("logged_in", user=user.id)
    return SignInResult(user=user, tokens=pair, created=False)


def _refused(code: str, message: str) -> AuthError:
    return AuthError(401, code, message)


async def refresh(
    cmd: RefreshTokens, uow: AuthUnitOfWork, *, tokens: TokenIssuer, revoked: RevokedTokens
) -> SignInResult:
    """Rotate: the presented token is spent and a new one of the same family issued. A spent token
    presented again means it leaked: the whole family is revoked (401 ``token_reused``), and so is
    every access token issued in it."""
    token_hash = hash_refresh_token(cmd.refresh_token)
    async with uow:
        session = await uow.sessions.by_hash(token_hash, for_update=True)
        now = tokens.clock.now()
        if session is None:
            raise _refused("invalid_token", "unknown refresh token")
        if session.rotated_at is not None:
            count = await uow.sessions.revoke_family(session.family_id, now)
            await uow.commit()
            await revoked.revoke_session(session.family_id, tokens.access_ttl_s + REVOCATION_LEEWAY_S)
            log.warning("refresh_token_reused", user=session.user_id, family=session.family_id, revoked=count)
            raise _refused("token_reused", "this refresh token was already used; the session is revoked")
        if session.revoked_at is not None:
            raise _refused("token_revoked", "this session was revoked")
        if session.expires_at <= now:
            raise _refused("token_expired", "the refresh token has expired")
        user = await uow.users.get(session.user_id)
        if user is None:
            raise _refused("invalid_token", "unknown refresh token")
        await uow.sessions.mark_rotated(token_hash, now)
        pair = await start_session(uow, tokens, user, family_id=session.family_id)
        await uow.commit()
    return SignInResult(user=user, tokens=pair, created=False)


async def logout(cmd: Logout, uow: AuthUnitOfWork, *, revoked: RevokedTokens, tokens: TokenIssuer) -> None:
    now = tokens.clock.now()
    async with uow:
        families = set()
        if cmd.session_id:
            families.add(cmd.session_id)
        if cmd.refresh_token:
            session = await uow.sessions.by_hash(hash_refresh_token(cmd.refresh_token))
            if session is not None and session.user_id == cmd.user_id:
                families.add(session.family_id)
        for family in sorted(families):
            await uow.sessions.revoke_family(family, now)
        await uow.commit()
    for family in sorted(families):  # every access token of the session, not only the one presented
        await revoked.revoke_session(family, tokens.access_ttl_s + REVOCATION_LEEWAY_S)
    if cmd.jti:
        remaining = (cmd.expires_at or int(now.timestamp()) + tokens.access_ttl_s) - int(now.timestamp())
        await revoked.revoke(cmd.jti, max(1, remaining + REVOCATION_LEEWAY_S))
    log.info("logged_out", user=cmd.user_id, sessions=len(families))
