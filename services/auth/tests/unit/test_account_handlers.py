"""Register, login, refresh (rotation; reuse revokes the family), logout, on in-memory fakes."""

from __future__ import annotations

from typing import Any

import pytest

from spendsense_auth.domain.accounts import AuthError, hash_refresh_token
from spendsense_auth.domain.commands import Login, Logout, RateLimits, RefreshTokens, Register
from spendsense_auth.domain.passwords import PasswordPolicy
from spendsense_auth.handlers import accounts
from spendsense_shared.testing.fakes import load_beside

fakes = load_beside(__file__, "fakes.py", "spendsense_auth_unit_fakes")

PASSWORD = "Vivid-Otter-42-Lamp"
POLICY = PasswordPolicy.with_common(["password", "qwerty"])


class Env:
    def __init__(self, uow: Any, tokens: Any, limits: RateLimits | None = None) -> None:
        self.uow = uow
        self.tokens = tokens
        self.hasher = fakes.CountingHasher()
        self.limiter = fakes.FakeRateLimiter()
        self.revoked = fakes.FakeRevokedTokens()
        self.limits = limits or RateLimits()

    async def register(self, email: str = "Jane@Example.com", password: str = PASSWORD, **kw: Any) -> Any:
        return await accounts.register(
            Register(email=email, password=password, client_ip="10.0.0.1", **kw),
            self.uow,
            hasher=self.hasher,
            tokens=self.tokens,
            policy=POLICY,
            limiter=self.limiter,
            limits=self.limits,
        )

    async def login(self, password: str = PASSWORD, ip: str = "10.0.0.1", **who: Any) -> Any:
        who = who or {"email": "jane@example.com"}
        return await accounts.login(
            Login(password=password, client_ip=ip, **who),
            self.uow,
            hasher=self.hasher,
            tokens=self.tokens,
            limiter=self.limiter,
            limits=self.limits,
        )

    async def refresh(self, token: str) -> Any:
        return await accounts.refresh(
            RefreshTokens(token), self.uow, tokens=self.tokens, revoked=self.revoked
        )


@pytest.fixture
def env(uow, tokens) -> Env:
    return Env(uow, tokens)


async def test_register_creates_the_user_with_a_password_identity_a_session_and_an_event(env, uow):
    result = await env.register(username="Jane_D")

    assert result.created
    user = result.user
    assert (user.email, user.username, user.roles) == ("jane@example.com", "jane_d", ("user",))
    assert await uow.users.password_hash(user.id) == f"hashed:{PASSWORD}"
    [identity] = await uow.users.identities(user.id)
    assert (identity.provider, identity.subject) == ("password", "jane@example.com")
    session = await uow.sessions.by_hash(hash_refresh_token(result.tokens.refresh_token))
    assert session.user_id == user.id
    assert (session.expires_at - session.issued_at).days == 30
    [event] = uow.published
    assert event.type == "user.registered"
    assert event.data == {"user_id": user.id, "roles": ["user"], "registered_via": "password"}


async def test_register_refuses_a_weak_password_naming_every_rule_and_stores_nothing(env, uow):
    with pytest.raises(AuthError) as refused:
        await env.register(password="password")
    assert (refused.value.status, refused.value.code) == (422, "weak_password")
    assert {d["rule"] for d in refused.value.details} == {
        "min_length",
        "uppercase",
        "digit",
        "symbol",
        "common",
    }
    assert uow.users.users == {}
    assert env.hasher.hashes == 0


@pytest.mark.parametrize(("email", "username"), [("JANE@example.com", None), ("other@example.com", "jane")])
async def test_duplicate_email_or_username_is_a_409(env, email, username):
    await env.register(username="jane")
    with pytest.raises(AuthError) as refused:
        await env.register(email=email, username=username)
    assert refused.value.status == 409
    assert refused.value.code in ("email_taken", "username_taken")


async def test_register_validates_email_and_username(env):
    with pytest.raises(AuthError) as bad_email:
        await env.register(email="nope")
    with pytest.raises(AuthError) as bad_name:
        await env.register(username="x")
    assert bad_email.value.status == bad_name.value.status == 422


async def test_login_by_email_or_username_issues_a_new_session(env, uow, tokens):
    registered = await env.register(username="jane")
    by_email = await env.login(email="  JANE@example.com ")
    by_name = await env.login(username="Jane")
    assert by_email.user == by_name.user == registered.user
    assert not by_email.created
    families = {s.family_id for s in uow.sessions.rows.values()}
    assert len(families) == 3


async def test_unknown_user_and_wrong_password_both_run_one_verify_and_get_the_same_401(env):
    await env.register()
    env.hasher.verified_against.clear()
    with pytest.raises(AuthError) as wrong:
        await env.login(password="Wrong-Password-1")
    with pytest.raises(AuthError) as unknown:
        await env.login(email="nobody@example.com")
    with pytest.raises(AuthError) as unknown_name:
        await env.login(username="nobody")
    with pytest.raises(AuthError) as not_an_email:
        await env.login(email="not-an-email")
    assert len(env.hasher.verified_against) == 4  # each attempt verified once: a dummy for the unknown
    assert env.hasher.verified_against[1:] == [None, None, None]
    errors = {
        (e.value.status, e.value.code, e.value.message) for e in (wrong, unknown, unknown_name, not_an_email)
    }
    assert errors == {(401, "invalid_credentials", "the email/username or password is not correct")}


async def test_a_user_without_password_cannot_log_in(env, uow, clock):
    from spendsense_auth.domain.accounts import User

    await uow.users.add(User("u1", "np@example.com", None, ("user",), clock.now()))
    with pytest.raises(AuthError) as refused:
        await env.login(email="np@example.com")
    assert refused.value.code == "invalid_credentials"
    assert env.hasher.verified_against == [None]


async def test_login_is_rate_limited_per_account_and_per_ip(uow, tokens):
    env = Env(uow, tokens, RateLimits(login_per_account=2, login_per_ip=3))
    await env.register()
    for _ in range(2):
        await env.login()
    with pytest.raises(AuthError) as per_account:
        await env.login()
    assert (per_account.value.status, per_account.value.retry_after_s) == (429, 60)
    with pytest.raises(AuthError) as per_ip:
        await env.login(email="other@example.com", ip="10.0.0.1")
    assert per_ip.value.status == 429
    scopes = {h[0] for h in env.limiter.hits}
    assert scopes >= {"login-ip", "login-account", "register-ip", "register-account"}


async def test_register_is_rate_limited_per_ip(uow, tokens):
    env = Env(uow, tokens, RateLimits(register_per_ip=1))
    await env.register()
    with pytest.raises(AuthError) as refused:
        await env.register(email="two@example.com")
    assert refused.value.code == "rate_limited"


async def test_refresh_rotates_within_the_family(env, uow):
    first = await env.register()
    second = await env.refresh(first.tokens.refresh_token)
    old = await uow.sessions.by_hash(hash_refresh_token(first.tokens.refresh_token))
    new = await uow.sessions.by_hash(hash_refresh_token(second.tokens.refresh_token))
    assert old.rotated_at is not None
    assert new.family_id == old.family_id
    assert new.rotated_at is None
    assert new.revoked_at is None
    assert second.user == first.user


async def test_reusing_a_rotated_refresh_token_revokes_the_whole_family(env, uow):
    first = await env.register()
    second = await env.refresh(first.tokens.refresh_token)
    with pytest.raises(AuthError) as reused:
        await env.refresh(first.tokens.refresh_token)
    assert (reused.value.status, reused.value.code) == (401, "token_reused")
    assert uow.sessions.live() == []
    family = (await uow.sessions.by_hash(hash_refresh_token(first.tokens.refresh_token))).family_id
    # every access token issued in the family is refused too, until the longest could have expired
    assert env.revoked.sessions == {family: env.tokens.access_ttl_s + accounts.REVOCATION_LEEWAY_S}
    with pytest.raises(AuthError) as revoked:
        await env.refresh(second.tokens.refresh_token)
    assert revoked.value.code == "token_revoked"


async def test_another_session_survives_a_reuse_in_one_family(env, uow):
    first = await env.register()
    other = await env.login()
    await env.refresh(first.tokens.refresh_token)
    with pytest.raises(AuthError):
        await env.refresh(first.tokens.refresh_token)
    assert (await env.refresh(other.tokens.refresh_token)).user == first.user


async def test_unknown_and_expired_refresh_tokens_are_refused(env, clock):
    first = await env.register()
    with pytest.raises(AuthError) as unknown:
        await env.refresh("refresh:nope")
    assert unknown.value.code == "invalid_token"
    clock.advance(days=31)
    with pytest.raises(AuthError) as expired:
        await env.refresh(first.tokens.refresh_token)
    assert expired.value.code == "token_expired"


async def test_refresh_carries_the_current_roles(env, uow, tokens):
    from dataclasses import replace

    first = await env.register()
    await uow.users.update(replace(first.user, roles=("user", "operator")))
    assert (await env.refresh(first.tokens.refresh_token)).user.roles == ("user", "operator")
    assert tokens.issued[-1][2] == ("user", "operator")


async def test_logout_revokes_the_session_family_and_lists_the_access_token(env, uow, clock):
    first = await env.register()
    family = (await uow.sessions.by_hash(hash_refresh_token(first.tokens.refresh_token))).family_id
    exp = int(clock.now().timestamp()) + 1200
    await accounts.logout(
        Logout(user_id=first.user.id, jti="j1", expires_at=exp, session_id=family),
        uow,
        revoked=env.revoked,
        tokens=env.tokens,
    )
    assert env.revoked.revoked["j1"] == 1200 + accounts.REVOCATION_LEEWAY_S
    assert family in env.revoked.sessions  # the session's other access tokens, not only the one presented
    with pytest.raises(AuthError) as refused:
        await env.refresh(first.tokens.refresh_token)
    assert refused.value.code == "token_revoked"


async def test_logout_with_a_refresh_token_revokes_its_family_only_for_its_owner(env, uow):
    jane = await env.register()
    bob = await env.register(email="bob@example.com")
    await accounts.logout(
        Logout(user_id=bob.user.id, jti=None, expires_at=None, refresh_token=jane.tokens.refresh_token),
        uow,
        revoked=env.revoked,
        tokens=env.tokens,
    )
    assert (await env.refresh(jane.tokens.refresh_token)).user == jane.user
    await accounts.logout(
        Logout(user_id=bob.user.id, jti="j2", expires_at=None, refresh_token=bob.tokens.refresh_token),
        uow,
        revoked=env.revoked,
        tokens=env.tokens,
    )
    assert uow.sessions.live(bob.user.id) == []
    assert "j2" in env.revoked.revoked
