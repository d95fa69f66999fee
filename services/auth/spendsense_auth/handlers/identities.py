"""Signing in with, linking and unlinking an identity that phone or OAuth verification proved.

PHONE and OAUTH call these after their own verification; each function enters and commits ``uow``.
"""

from __future__ import annotations

from spendsense_auth.domain.accounts import (
    OAUTH_PROVIDERS,
    AuthError,
    Identity,
    LinkResult,
    Provider,
    SignInResult,
    User,
    VerifiedIdentity,
    merged_user,
    try_normalize_email,
)
from spendsense_auth.handlers.ports import Clock, SystemClock, TokenIssuer
from spendsense_auth.handlers.sessions import new_id, start_session
from spendsense_auth.handlers.unit_of_work import AuthUnitOfWork
from spendsense_shared.logging import get_logger
from spendsense_shared.messaging.catalog import UserMerged, UserRegistered, new_event

log = get_logger(__name__)


def registered_via(provider: str) -> str:
    return "oauth" if provider in OAUTH_PROVIDERS else provider


async def create_user(
    uow: AuthUnitOfWork,
    clock: Clock,
    *,
    email: str | None,
    username: str | None = None,
    display_name: str | None = None,
    roles: tuple[str, ...] = ("user",),
    password_hash: str | None = None,
    via: str,
) -> User:
    """A new user, stored and announced (``user.registered``) in ``uow``'s transaction."""
    user = User(
        id=new_id(),
        email=email,
        username=username,
        roles=roles,
        created_at=clock.now(),
        display_name=display_name,
    )
    await uow.users.add(user, password_hash=password_hash)
    uow.publish(
        new_event(
            UserRegistered(user_id=user.id, roles=list(user.roles), registered_via=via),
            user_id=user.id,
        )
    )
    return user


async def _identity_owner(uow: AuthUnitOfWork, identity: VerifiedIdentity) -> User | None:
    found = await uow.users.find_identity(identity.provider, identity.subject)
    return None if found is None else await uow.users.get(found.user_id)


def _identity_of(user_id: str, identity: VerifiedIdentity, clock: Clock) -> Identity:
    return Identity(
        user_id=user_id,
        provider=identity.provider,
        subject=identity.subject,
        email=identity.email,
        created_at=clock.now(),
    )


async def sign_in_with_identity(
    uow: AuthUnitOfWork, tokens: TokenIssuer, identity: VerifiedIdentity
) -> SignInResult:
    """The identity's user; else the user with the same *verified* email (the identity gets linked);
    else a new user (``user.registered``). Issues tokens and commits."""
    clock = tokens.clock
    verified_email = (
        try_normalize_email(identity.email) if identity.email and identity.email_verified else None
    )
    async with uow:
        created = False
        user = await _identity_owner(uow, identity)
        if user is None and verified_email is not None:
            user = await uow.users.by_email(verified_email)
            if user is not None:
                if any(i.provider == identity.provider for i in await uow.users.identities(user.id)):
                    # The same email at the same provider under another account id: never guess.
                    raise AuthError(
                        409,
                        "provider_already_linked",
                        f"this account already has a {identity.provider} sign-in",
                    )
                await uow.users.add_identity(_identity_of(user.id, identity, clock))
                log.info("identity_linked", user=user.id, provider=identity.provider, by="verified_email")
        if user is None:
            email = (
                verified_email
                if verified_email and await uow.users.by_email(verified_email) is None
                else None
            )
            user = await create_user(
                uow,
                clock,
                email=email,
                display_name=identity.display_name,
                via=registered_via(identity.provider),
            )
            await uow.users.add_identity(_identity_of(user.id, identity, clock))
            created = True
        pair = await start_session(uow, tokens, user)
        await uow.commit()
    log.info("signed_in", user=user.id, provider=identity.provider, created=created)
    return SignInResult(user=user, tokens=pair, created=created)


async def link_identity(
    uow: AuthUnitOfWork, user_id: str, identity: VerifiedIdentity, clock: Clock | None = None
) -> LinkResult:
    """Add the identity to ``user_id``; when it belongs to another user, merge that user into this one
    (identities moved, their sessions revoked, ``user.merged``) and report ``merged_from``."""
    clock = clock or SystemClock()
    async with uow:
        user = await uow.users.get(user_id, for_update=True)
        if user is None:
            raise AuthError(404, "not_found", "no such user")
        owner = await _identity_owner(uow, identity)
        if owner is not None and owner.id == user.id:
            return LinkResult(user=user, merged_from=None)
        mine = await uow.users.identities(user.id)
        if any(i.provider == identity.provider for i in mine):
            raise AuthError(
                409, "provider_already_linked", f"this account already has a {identity.provider} sign-in"
            )
        merged_from = None
        if owner is None:
            await uow.users.add_identity(_identity_of(user.id, identity, clock))
        else:
            merged = merged_user(user, owner)
            await uow.users.merge(owner.id, user.id)
            await uow.sessions.revoke_user(owner.id, clock.now())
            if merged != user:
                await uow.users.update(merged)
                user = merged
            uow.publish(
                new_event(UserMerged(source_user_id=owner.id, target_user_id=user.id), user_id=user.id)
            )
            merged_from = owner.id
            log.info("users_merged", source=owner.id, target=user.id, provider=identity.provider)
        await uow.commit()
    log.info("identity_linked", user=user.id, provider=identity.provider, merged_from=merged_from)
    return LinkResult(user=user, merged_from=merged_from)


async def unlink_identity(uow: AuthUnitOfWork, user_id: str, provider: Provider) -> User:
    """Remove the user's identity at ``provider``; never the last way in (409 ``last_identity``)."""
    async with uow:
        user = await uow.users.get(user_id, for_update=True)
        if user is None:
            raise AuthError(404, "not_found", "no such user")
        identities = await uow.users.identities(user_id)
        if not any(i.provider == provider for i in identities):
            raise AuthError(404, "not_found", f"no {provider} sign-in is linked to this account")
        if len(identities) == 1:
            log.warning("unlink_refused", user=user_id, provider=provider, reason="last_identity")
            raise AuthError(409, "last_identity", "this is the account's last way to sign in")
        await uow.users.remove_identity(user_id, provider)
        if provider == "password":
            await uow.users.set_password_hash(user_id, None)
        await uow.commit()
    log.info("identity_unlinked", user=user_id, provider=provider)
    return user
