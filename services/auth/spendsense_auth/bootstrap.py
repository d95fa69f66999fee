"""The auth service's composition root: its signing keys (the JWKS, its own verifier, the token
issuer), bcrypt, the Redis rate limits and revocation list, and the use cases wired to them."""

from __future__ import annotations

from typing import Any, cast

from spendsense_auth.adapters.keys import load_key_ring
from spendsense_auth.adapters.oauth import ConfiguredProviders, RedisLoginCodes, RedisOAuthStates
from spendsense_auth.adapters.orm import messaging
from spendsense_auth.adapters.passwords import BcryptHasher, load_common_passwords
from spendsense_auth.adapters.phone_codes import RedisPhoneCodeStore, code_secret
from spendsense_auth.adapters.redis_limits import RedisRateLimiter, RedisRevokedTokens
from spendsense_auth.adapters.sms import SnsSmsSender
from spendsense_auth.adapters.tokens import JwtTokenIssuer
from spendsense_auth.adapters.unit_of_work import SqlAuthUnitOfWork
from spendsense_auth.api.auth import router as auth_router
from spendsense_auth.api.deps import proxy_trusted
from spendsense_auth.api.erasures import router as erasures_router
from spendsense_auth.api.keys import router as keys_router
from spendsense_auth.api.keys import signing_key
from spendsense_auth.api.oauth import router as oauth_router
from spendsense_auth.api.phone import router as phone_router
from spendsense_auth.api.users import router as users_router
from spendsense_auth.domain import commands
from spendsense_auth.domain import phone as phone_messages
from spendsense_auth.domain.passwords import PasswordPolicy
from spendsense_auth.handlers import accounts, erasure, users
from spendsense_auth.handlers import phone as phone_auth
from spendsense_auth.handlers.oauth import OAuthUseCases
from spendsense_auth.handlers.ports import SystemClock
from spendsense_auth.settings import AuthSettings
from spendsense_shared.messagebus import Message, MessageBus, MessageHandler
from spendsense_shared.messaging.catalog import ERASURE_CONFIRMATIONS
from spendsense_shared.platform import Platform
from spendsense_shared.security import TokenVerifier
from spendsense_shared.service import ServiceDefinition, Wiring
from spendsense_shared.unit_of_work import EventHandler


def event_handlers() -> dict[str, EventHandler]:
    return {
        "user.erasure_requested": erasure.erase_user,
        **{f"{service}.user_erased": erasure.record_confirmation for service in ERASURE_CONFIRMATIONS},
    }


def rate_limits(settings: AuthSettings) -> commands.RateLimits:
    return commands.RateLimits(
        login_per_account=settings.rate_limit_login_per_account,
        login_per_ip=settings.rate_limit_login_per_ip,
        login_window_s=settings.rate_limit_login_window_s,
        register_per_account=settings.rate_limit_register_per_account,
        register_per_ip=settings.rate_limit_register_per_ip,
        register_window_s=settings.rate_limit_register_window_s,
    )


def bootstrap(platform: Platform) -> Wiring:
    settings = cast(AuthSettings, platform.settings)
    keys = load_key_ring(settings)
    uow = platform.database.uow_factory(SqlAuthUnitOfWork)
    clock = SystemClock()
    tokens = JwtTokenIssuer(
        keys.current,
        issuer=settings.jwt_issuer,
        audience=settings.jwt_audience,
        access_ttl_s=settings.access_token_ttl_s,
        refresh_ttl_s=settings.refresh_token_ttl_s,
        clock=clock,
    )
    hasher = BcryptHasher(settings.password_bcrypt_rounds, settings.password_hash_concurrency)
    policy = PasswordPolicy.with_common(load_common_passwords(settings.common_passwords_file))
    limiter = RedisRateLimiter(platform.cache)
    revoked = RedisRevokedTokens(platform.revocations)
    limits = rate_limits(settings)
    phone = phone_auth.PhoneVerification(
        codes=RedisPhoneCodeStore(platform.cache),
        sms=SnsSmsSender(platform.aws),
        limiter=limiter,
        secret=code_secret(
            settings.phone_code_secret.get_secret_value() if settings.phone_code_secret else None,
            keys.current.pem(),
        ),
        policy=settings.phone_policy(),
    )

    handlers: dict[type[Message[Any]], MessageHandler] = {
        commands.Register: lambda cmd: accounts.register(
            cmd, uow(), hasher=hasher, tokens=tokens, policy=policy, limiter=limiter, limits=limits
        ),
        commands.Login: lambda cmd: accounts.login(
            cmd, uow(), hasher=hasher, tokens=tokens, limiter=limiter, limits=limits
        ),
        commands.RefreshTokens: lambda cmd: accounts.refresh(cmd, uow(), tokens=tokens, revoked=revoked),
        commands.Logout: lambda cmd: accounts.logout(cmd, uow(), revoked=revoked, tokens=tokens),
        commands.CreateUser: lambda cmd: users.create_account(
            cmd, uow(), hasher=hasher, policy=policy, clock=clock
        ),
        commands.GetUser: lambda q: users.get_user(q, uow()),
        commands.UpdateUser: lambda cmd: users.update_user(cmd, uow(), clock=clock),
        commands.GrantRole: lambda cmd: users.grant_role(cmd, uow()),
        commands.RevokeRole: lambda cmd: users.revoke_role(cmd, uow()),
        commands.GetErasure: lambda q: erasure.get_erasure(q, uow()),
        commands.ListIncompleteErasures: lambda q: erasure.incomplete_erasures(q, uow()),
        phone_messages.RequestPhoneCode: lambda cmd: phone_auth.request_code(cmd, phone),
        phone_messages.VerifyPhoneCode: lambda cmd: phone_auth.verify_code(cmd, uow(), tokens, phone),
        phone_messages.LinkPhone: lambda cmd: phone_auth.link_phone(cmd, uow(), phone),
        phone_messages.UnlinkPhone: lambda cmd: phone_auth.unlink_phone(cmd, uow()),
    }
    handlers |= OAuthUseCases(
        uow=uow,
        tokens=tokens,
        providers=ConfiguredProviders(settings),
        states=RedisOAuthStates(platform.cache),
        login_codes=RedisLoginCodes(platform.cache),
        policy=settings.oauth_policy(),
    ).handlers()

    async def bootstrap_admin() -> None:
        if settings.admin_email and settings.admin_password:
            await users.bootstrap_admin_once(
                uow,
                email=settings.admin_email,
                password=settings.admin_password.get_secret_value(),
                hasher=hasher,
                policy=policy,
                clock=clock,
            )

    return Wiring(
        unit_of_work=uow,
        bus=MessageBus(handlers),
        event_handlers=event_handlers(),
        # The auth service verifies its own tokens with its own keys: no HTTP round trip to itself.
        token_verifier=TokenVerifier(
            issuer=settings.jwt_issuer,
            audience=settings.jwt_audience,
            jwks=keys.jwks(),
            max_lifetime_s=settings.access_token_ttl_s,
        ),
        dependencies={signing_key: keys, proxy_trusted: settings.trust_proxy},
        startup=[bootstrap_admin],
    )


SERVICE = ServiceDefinition(
    name="auth",
    title="SpendSense auth",
    settings_class=AuthSettings,
    tables=messaging,
    routers=[keys_router, auth_router, users_router, phone_router, oauth_router, erasures_router],
    bootstrap=bootstrap,
)
