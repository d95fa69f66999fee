"""Accounts managed by admins and by their owners, roles, the bootstrap admin and erasure."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

from spendsense_auth.domain.accounts import (
    AuthError,
    Identity,
    User,
    check_username,
    configured_email,
    normalize_email,
    with_role,
    without_role,
)
from spendsense_auth.domain.commands import CreateUser, GetUser, GrantRole, RevokeRole, UpdateUser, UserView
from spendsense_auth.domain.passwords import PasswordPolicy
from spendsense_auth.handlers.accounts import ensure_available
from spendsense_auth.handlers.identities import create_user
from spendsense_auth.handlers.ports import Clock, PasswordHasher
from spendsense_auth.handlers.unit_of_work import AuthUnitOfWork
from spendsense_shared.logging import get_logger

log = get_logger(__name__)


def _not_found() -> AuthError:
    return AuthError(404, "not_found", "no such user")


async def create_account(
    cmd: CreateUser, uow: AuthUnitOfWork, *, hasher: PasswordHasher, policy: PasswordPolicy, clock: Clock
) -> User:
    email = normalize_email(cmd.email) if cmd.email is not None else None
    username = check_username(cmd.username) if cmd.username is not None else None
    password_hash = None
    if cmd.password is not None:
        if email is None:
            raise AuthError(422, "validation_error", "a password needs an email to sign in with")
        policy.check(cmd.password)
        password_hash = await hasher.hash(cmd.password)
    async with uow:
        await ensure_available(uow, email, username)
        user = await create_user(
            uow,
            clock,
            email=email,
            username=username,
            display_name=cmd.display_name,
            password_hash=password_hash,
            via="password" if password_hash else "admin_bootstrap",
        )
        if email is not None and password_hash is not None:
            await uow.users.add_identity(Identity(user.id, "password", email, email, user.created_at))
        await uow.commit()
    log.info("user_created", user=user.id, actor=cmd.actor_id)
    return user


async def get_user(query: GetUser, uow: AuthUnitOfWork) -> UserView | None:
    async with uow:
        user = await uow.users.get(query.user_id)
        if user is None:
            return None
        return UserView(user=user, identities=await uow.users.identities(user.id))


async def update_user(cmd: UpdateUser, uow: AuthUnitOfWork, *, clock: Clock) -> User:
    email = normalize_email(cmd.email) if cmd.email is not None else None
    username = check_username(cmd.username) if cmd.username is not None else None
    async with uow:
        user = await uow.users.get(cmd.user_id, for_update=True)
        if user is None:
            raise _not_found()
        new_email = email if email is not None and email != user.email else None
        new_username = username if username is not None and username != user.username else None
        await ensure_available(uow, new_email, new_username)
        updated = replace(
            user,
            email=new_email or user.email,
            username=new_username or user.username,
            display_name=cmd.display_name if cmd.display_name is not None else user.display_name,
        )
        if updated != user:
            await uow.users.update(updated)
        if new_email is not None:
            # The password sign-in follows the account's email.
            password = next(
                (i for i in await uow.users.identities(user.id) if i.provider == "password"), None
            )
            if password is not None:
                await uow.users.remove_identity(user.id, "password")
                await uow.users.add_identity(Identity(user.id, "password", new_email, new_email, clock.now()))
        await uow.commit()
    log.info("user_updated", user=user.id, actor=cmd.actor_id)
    return updated


async def grant_role(cmd: GrantRole, uow: AuthUnitOfWork) -> User:
    async with uow:
        user = await uow.users.get(cmd.user_id, for_update=True)
        if user is None:
            raise _not_found()
        updated = with_role(user, cmd.role)
        if updated != user:
            await uow.users.update(updated)
            await uow.commit()
    log.info("role_granted", user=user.id, role=cmd.role, actor=cmd.actor_id)
    return updated


async def revoke_role(cmd: RevokeRole, uow: AuthUnitOfWork) -> User:
    async with uow:
        user = await uow.users.get(cmd.user_id, for_update=True)
        if user is None:
            raise _not_found()
        updated = without_role(user, cmd.role)
        if updated == user:
            return user
        if cmd.role == "admin" and await uow.users.count_with_role("admin") <= 1:
            log.warning(
                "role_change_refused", actor=cmd.actor_id, user=user.id, role="admin", reason="last_admin"
            )
            raise AuthError(409, "last_admin", "the last admin keeps the admin role")
        await uow.users.update(updated)
        await uow.commit()
    log.info("role_revoked", user=user.id, role=cmd.role, actor=cmd.actor_id)
    return updated


async def bootstrap_admin(
    uow: AuthUnitOfWork,
    *,
    email: str,
    password: str,
    hasher: PasswordHasher,
    policy: PasswordPolicy,
    clock: Clock,
) -> User:
    """The configured admin exists and has the admin role (idempotent; an existing password is kept)."""
    address = configured_email(email)
    async with uow:
        user = await uow.users.by_email(address)
        if user is not None:
            if not user.is_admin:
                user = with_role(user, "admin")
                await uow.users.update(user)
                await uow.commit()
                log.info("admin_bootstrapped", user=user.id, created=False)
            return user
    policy.check(password, "SPENDSENSE_ADMIN_PASSWORD")
    password_hash = await hasher.hash(password)
    async with uow:
        user = await create_user(
            uow,
            clock,
            email=address,
            roles=("user", "admin"),
            password_hash=password_hash,
            via="admin_bootstrap",
        )
        await uow.users.add_identity(Identity(user.id, "password", address, address, user.created_at))
        await uow.commit()
    log.info("admin_bootstrapped", user=user.id, created=True)
    return user


async def bootstrap_admin_once(
    uow_factory: Callable[[], AuthUnitOfWork],
    *,
    email: str,
    password: str,
    hasher: PasswordHasher,
    policy: PasswordPolicy,
    clock: Clock,
) -> User:
    """``bootstrap_admin``, retried once when another process (the API and the worker both run it)
    created the account between our check and our insert."""
    try:
        return await bootstrap_admin(
            uow_factory(), email=email, password=password, hasher=hasher, policy=policy, clock=clock
        )
    except AuthError as exc:
        if exc.status != 409:
            raise
        return await bootstrap_admin(
            uow_factory(), email=email, password=password, hasher=hasher, policy=policy, clock=clock
        )
