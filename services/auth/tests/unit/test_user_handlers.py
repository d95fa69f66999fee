"""Accounts by admins, reads and edits, roles (never the last admin), the bootstrap admin, erasure, and
signing in, linking, merging and unlinking identities — on in-memory fakes."""

from __future__ import annotations

from typing import Any

import pytest

from spendsense_auth.domain.accounts import AuthError, User, VerifiedIdentity, hash_refresh_token
from spendsense_auth.domain.commands import CreateUser, GetUser, GrantRole, RevokeRole, UpdateUser
from spendsense_auth.domain.passwords import PasswordPolicy
from spendsense_auth.handlers import users
from spendsense_auth.handlers.identities import link_identity, sign_in_with_identity, unlink_identity
from spendsense_shared.testing.fakes import load_beside

fakes = load_beside(__file__, "fakes.py", "spendsense_auth_unit_fakes")

PASSWORD = "Vivid-Otter-42-Lamp"
POLICY = PasswordPolicy()


@pytest.fixture
def hasher() -> Any:
    return fakes.CountingHasher()


async def create(uow, hasher, clock, **kw: Any) -> User:
    return await users.create_account(
        CreateUser(actor_id="admin", **kw), uow, hasher=hasher, policy=POLICY, clock=clock
    )


async def admin(uow, hasher, clock, email="root@example.com") -> User:
    return await users.bootstrap_admin(
        uow, email=email, password=PASSWORD, hasher=hasher, policy=POLICY, clock=clock
    )


# --- accounts -----------------------------------------------------------------------------------------


async def test_an_admin_creates_accounts_with_or_without_email_and_password(uow, hasher, clock):
    bare = await create(uow, hasher, clock)
    full = await create(uow, hasher, clock, email="Imp@Example.com", password=PASSWORD, username="imp")
    assert (bare.email, bare.username, bare.roles) == (None, None, ("user",))
    assert full.email == "imp@example.com"
    assert [i.provider for i in await uow.users.identities(full.id)] == ["password"]
    assert await uow.users.identities(bare.id) == []
    assert [e.data["registered_via"] for e in uow.published] == ["admin_bootstrap", "password"]


async def test_create_refuses_a_password_without_email_a_weak_one_and_duplicates(uow, hasher, clock):
    with pytest.raises(AuthError):
        await create(uow, hasher, clock, password=PASSWORD)
    with pytest.raises(AuthError) as weak:
        await create(uow, hasher, clock, email="a@example.com", password="short")
    assert weak.value.code == "weak_password"
    await create(uow, hasher, clock, email="a@example.com")
    with pytest.raises(AuthError) as taken:
        await create(uow, hasher, clock, email="A@example.com")
    assert taken.value.status == 409


async def test_get_user_shows_identities_and_none_for_unknown(uow, hasher, clock):
    user = await create(uow, hasher, clock, email="a@example.com", password=PASSWORD)
    view = await users.get_user(GetUser(user.id), uow)
    assert view.user == user
    assert [i.provider for i in view.identities] == ["password"]
    assert await users.get_user(GetUser("nobody"), uow) is None


async def test_update_changes_fields_and_moves_the_password_sign_in_to_the_new_email(uow, hasher, clock):
    user = await create(uow, hasher, clock, email="a@example.com", password=PASSWORD)
    updated = await users.update_user(
        UpdateUser(user.id, user.id, email="B@example.com", username="bee", display_name="Bee"),
        uow,
        clock=clock,
    )
    assert (updated.email, updated.username, updated.display_name) == ("b@example.com", "bee", "Bee")
    [identity] = await uow.users.identities(user.id)
    assert identity.subject == "b@example.com"
    assert await uow.users.find_identity("password", "a@example.com") is None


async def test_update_refuses_a_taken_email_or_username_and_unknown_users(uow, hasher, clock):
    await create(uow, hasher, clock, email="a@example.com", username="alpha")
    other = await create(uow, hasher, clock, email="b@example.com")
    for change in ({"email": "a@example.com"}, {"username": "alpha"}):
        with pytest.raises(AuthError) as taken:
            await users.update_user(UpdateUser(other.id, other.id, **change), uow, clock=clock)
        assert taken.value.status == 409
    with pytest.raises(AuthError) as missing:
        await users.update_user(UpdateUser("nobody", "x", display_name="n"), uow, clock=clock)
    assert missing.value.status == 404


# --- roles and the bootstrap admin ---------------------------------------------------------------------


async def test_roles_are_granted_and_revoked_but_never_from_the_last_admin(uow, hasher, clock):
    root = await admin(uow, hasher, clock)
    user = await create(uow, hasher, clock)
    assert (await users.grant_role(GrantRole(root.id, user.id, "operator"), uow)).roles == (
        "user",
        "operator",
    )
    assert (await users.grant_role(GrantRole(root.id, user.id, "admin"), uow)).roles == (
        "user",
        "operator",
        "admin",
    )
    assert (await users.revoke_role(RevokeRole(root.id, root.id, "admin"), uow)).roles == ("user",)
    with pytest.raises(AuthError) as last:
        await users.revoke_role(RevokeRole(user.id, user.id, "admin"), uow)
    assert (last.value.status, last.value.code) == (409, "last_admin")
    assert (await uow.users.get(user.id)).is_admin
    with pytest.raises(AuthError) as unknown:
        await users.grant_role(GrantRole(root.id, "nobody", "operator"), uow)
    assert unknown.value.status == 404


async def test_the_bootstrap_admin_is_created_once_and_an_existing_account_promoted(uow, hasher, clock):
    first = await admin(uow, hasher, clock)
    again = await admin(uow, hasher, clock)
    assert first == again
    assert first.is_admin
    assert [e.data["registered_via"] for e in uow.published] == ["admin_bootstrap"]
    plain = await create(uow, hasher, clock, email="ops@example.com")
    promoted = await admin(uow, hasher, clock, email="ops@example.com")
    assert promoted.id == plain.id
    assert promoted.is_admin


async def test_the_bootstrap_admin_needs_a_policy_password(uow, hasher, clock):
    with pytest.raises(AuthError) as weak:
        await users.bootstrap_admin(
            uow, email="root@example.com", password="admin", hasher=hasher, policy=POLICY, clock=clock
        )
    assert weak.value.code == "weak_password"


async def test_bootstrap_admin_once_retries_after_a_concurrent_creation(hasher, clock):
    shared = fakes.FakeAuthUnitOfWork()
    calls = []

    def factory():
        calls.append(1)
        if len(calls) == 1:  # another process creates the account between our check and our insert
            racing = fakes.FakeAuthUnitOfWork()  # sees no account yet, and then the insert collides

            async def add(user, password_hash=None):
                raise AuthError(409, "email_taken", "taken")

            racing.users.add = add
            return racing
        return shared

    await admin(shared, hasher, clock)
    user = await users.bootstrap_admin_once(
        factory, email="root@example.com", password=PASSWORD, hasher=hasher, policy=POLICY, clock=clock
    )
    assert user.is_admin
    assert len(calls) == 2


# --- identities ---------------------------------------------------------------------------------------


async def test_sign_in_with_a_new_identity_creates_a_user_and_then_finds_it(uow, tokens):
    phone = VerifiedIdentity("phone", "+14155552671")
    first = await sign_in_with_identity(uow, tokens, phone)
    again = await sign_in_with_identity(uow, tokens, phone)
    assert first.created
    assert not again.created
    assert again.user == first.user
    assert first.user.email is None
    assert [e.data["registered_via"] for e in uow.published] == ["phone"]


async def test_a_verified_oauth_email_signs_into_the_existing_account_and_links_it(
    uow, tokens, hasher, clock
):
    user = await create(uow, hasher, clock, email="jane@example.com", password=PASSWORD)
    google = VerifiedIdentity("google", "g-1", email="Jane@Example.com", email_verified=True)
    result = await sign_in_with_identity(uow, tokens, google)
    assert result.user.id == user.id
    assert not result.created
    assert {i.provider for i in await uow.users.identities(user.id)} == {"password", "google"}


async def test_an_unverified_email_never_signs_into_someone_elses_account(uow, tokens, hasher, clock):
    user = await create(uow, hasher, clock, email="jane@example.com", password=PASSWORD)
    github = VerifiedIdentity("github", "gh-1", email="jane@example.com", email_verified=False)
    result = await sign_in_with_identity(uow, tokens, github)
    assert result.created
    assert result.user.id != user.id
    assert result.user.email is None
    assert uow.published[-1].data["registered_via"] == "oauth"


async def test_link_adds_an_identity_nobody_has(uow, tokens):
    me = (await sign_in_with_identity(uow, tokens, VerifiedIdentity("phone", "+14155552671"))).user
    linked = await link_identity(uow, me.id, VerifiedIdentity("github", "gh-7"))
    assert linked.merged_from is None
    assert {i.provider for i in await uow.users.identities(me.id)} == {"phone", "github"}
    again = await link_identity(uow, me.id, VerifiedIdentity("github", "gh-7"))
    assert again.merged_from is None


async def test_link_of_another_users_identity_merges_that_user_in(uow, tokens, clock):
    me = (await sign_in_with_identity(uow, tokens, VerifiedIdentity("phone", "+14155552671"))).user
    other = await sign_in_with_identity(
        uow, tokens, VerifiedIdentity("google", "g-9", email="me@example.com", email_verified=True)
    )
    from dataclasses import replace

    await uow.users.update(replace(other.user, roles=("user", "operator")))
    result = await link_identity(uow, me.id, VerifiedIdentity("google", "g-9"), clock)
    assert result.merged_from == other.user.id
    assert result.user.email == "me@example.com"
    assert result.user.roles == ("user", "operator")
    assert await uow.users.get(other.user.id) is None
    assert {i.provider for i in await uow.users.identities(me.id)} == {"phone", "google"}
    session = await uow.sessions.by_hash(hash_refresh_token(other.tokens.refresh_token))
    assert session is None or session.revoked_at is not None
    merged = uow.published[-1]
    assert merged.type == "user.merged"
    assert merged.data == {"source_user_id": other.user.id, "target_user_id": me.id}


async def test_link_refuses_a_second_identity_of_the_same_provider_and_unknown_users(uow, tokens):
    me = (await sign_in_with_identity(uow, tokens, VerifiedIdentity("phone", "+14155552671"))).user
    with pytest.raises(AuthError) as twice:
        await link_identity(uow, me.id, VerifiedIdentity("phone", "+14155552672"))
    assert twice.value.code == "provider_already_linked"
    with pytest.raises(AuthError) as unknown:
        await link_identity(uow, "nobody", VerifiedIdentity("github", "x"))
    assert unknown.value.status == 404


async def test_unlink_never_removes_the_last_way_in(uow, tokens):
    me = (await sign_in_with_identity(uow, tokens, VerifiedIdentity("phone", "+14155552671"))).user
    await link_identity(uow, me.id, VerifiedIdentity("apple", "a-1"))
    user = await unlink_identity(uow, me.id, "apple")
    assert user.id == me.id
    with pytest.raises(AuthError) as last:
        await unlink_identity(uow, me.id, "phone")
    assert (last.value.status, last.value.code) == (409, "last_identity")
    with pytest.raises(AuthError) as missing:
        await unlink_identity(uow, me.id, "google")
    assert missing.value.status == 404


async def test_unlinking_the_password_forgets_its_hash(uow, hasher, clock):
    user = await create(uow, hasher, clock, email="a@example.com", password=PASSWORD)
    await link_identity(uow, user.id, VerifiedIdentity("github", "gh-1"), clock)
    await unlink_identity(uow, user.id, "password")
    assert await uow.users.password_hash(user.id) is None


async def test_the_bootstrap_admin_may_live_on_a_special_use_domain_and_log_in(uow, hasher, clock, tokens):
    from spendsense_auth.domain.commands import Login, RateLimits
    from spendsense_auth.handlers.accounts import login

    root = await admin(uow, hasher, clock, email="Admin@SpendSense.local")
    assert root.email == "admin@spendsense.local"
    result = await login(
        Login(password=PASSWORD, email="admin@spendsense.local"),
        uow,
        hasher=hasher,
        tokens=tokens,
        limiter=fakes.FakeRateLimiter(),
        limits=RateLimits(),
    )
    assert result.user.id == root.id
    with pytest.raises(AuthError):
        await admin(uow, hasher, clock, email="not an email")
