"""TokenVerifier (RS256 access tokens against a fixed JWKS) and the role ordering of Principal."""

from __future__ import annotations

import asyncio
import base64
import json
import time

import jwt
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from spendsense_shared.jwk import SigningKey
from spendsense_shared.security import Principal, Role, TokenError, TokenVerifier
from spendsense_shared.testing.plugin import AUDIENCE, ISSUER


@pytest.fixture(scope="module")
def other_key() -> SigningKey:
    return SigningKey.generate()


def claims(**overrides: object) -> dict[str, object]:
    now = int(time.time())
    return {
        "sub": "u1",
        "roles": ["user"],
        "iss": ISSUER,
        "aud": AUDIENCE,
        "iat": now,
        "nbf": now,
        "exp": now + 600,
        "typ": "access",
        **overrides,
    }


async def test_valid_token_yields_principal_with_subject_and_roles(token_verifier, mint):
    principal = await token_verifier.verify(mint("u-42", roles=["operator"]))

    assert principal == Principal(user_id="u-42", roles=frozenset({"operator"}))
    assert principal.role is Role.operator


async def test_token_without_roles_claim_is_a_plain_user(token_verifier, signing_key):
    token = jwt.encode(claims(roles=None), signing_key.private_key, "RS256", headers={"kid": signing_key.kid})

    principal = await token_verifier.verify(token)

    assert principal.roles == frozenset({"user"})


async def test_expired_token_is_rejected_beyond_the_leeway(token_verifier, mint):
    with pytest.raises(TokenError, match="expired"):
        await token_verifier.verify(mint("u1", ttl_s=-int(token_verifier.leeway_s) - 60))


async def test_token_expired_within_the_leeway_is_still_accepted(token_verifier, mint):
    principal = await token_verifier.verify(mint("u1", ttl_s=-5))

    assert principal.user_id == "u1"


async def test_token_for_another_audience_is_rejected(token_verifier, signing_key):
    token = signing_key.sign("u1", roles=["user"], issuer=ISSUER, audience="another-api")

    with pytest.raises(TokenError, match=r"(?i)audience"):
        await token_verifier.verify(token)


async def test_token_from_another_issuer_is_rejected(token_verifier, signing_key):
    token = signing_key.sign("u1", roles=["user"], issuer="evil-issuer", audience=AUDIENCE)

    with pytest.raises(TokenError, match=r"(?i)issuer"):
        await token_verifier.verify(token)


async def test_token_with_unknown_kid_is_rejected(token_verifier, signing_key):
    token = jwt.encode(claims(), signing_key.private_key, "RS256", headers={"kid": "no-such-key"})

    with pytest.raises(TokenError, match="unknown signing key"):
        await token_verifier.verify(token)


async def test_token_without_kid_is_rejected(token_verifier, signing_key):
    token = jwt.encode(claims(), signing_key.private_key, "RS256")

    with pytest.raises(TokenError, match="unknown signing key"):
        await token_verifier.verify(token)


async def test_token_signed_by_a_key_not_in_the_jwks_is_rejected(token_verifier, other_key):
    token = other_key.sign("u1", roles=["admin"], issuer=ISSUER, audience=AUDIENCE)

    with pytest.raises(TokenError):
        await token_verifier.verify(token)


async def test_token_signed_by_another_key_but_claiming_our_kid_fails_the_signature_check(
    token_verifier, signing_key, other_key
):
    forged = jwt.encode(
        claims(roles=["admin"]), other_key.private_key, "RS256", headers={"kid": signing_key.kid}
    )

    with pytest.raises(TokenError, match=r"(?i)signature"):
        await token_verifier.verify(forged)


async def test_token_with_tampered_payload_is_rejected(token_verifier, mint):
    header, _payload, signature = mint("u1").split(".")
    forged_claims = json.dumps(claims(sub="admin-1", roles=["admin"])).encode()
    tampered_payload = base64.urlsafe_b64encode(forged_claims).decode().rstrip("=")

    with pytest.raises(TokenError):
        await token_verifier.verify(f"{header}.{tampered_payload}.{signature}")


async def test_unsigned_alg_none_token_is_rejected(token_verifier, signing_key):
    token = jwt.encode(claims(roles=["admin"]), None, algorithm="none", headers={"kid": signing_key.kid})

    with pytest.raises(TokenError, match="unsupported algorithm"):
        await token_verifier.verify(token)


async def test_hs256_token_is_rejected_even_with_a_known_kid(token_verifier, signing_key):
    # The classic confusion attack: an HMAC token keyed with something the attacker knows.
    token = jwt.encode(
        claims(roles=["admin"]),
        "a-shared-secret-that-is-long-enough!!",
        algorithm="HS256",
        headers={"kid": signing_key.kid},
    )

    with pytest.raises(TokenError, match="unsupported algorithm"):
        await token_verifier.verify(token)


async def test_refresh_token_is_not_accepted_as_an_access_token(token_verifier, mint):
    with pytest.raises(TokenError, match="not an access token"):
        await token_verifier.verify(mint("u1", token_type="refresh"))


@pytest.mark.parametrize("missing", ["exp", "iat", "sub"])
async def test_token_missing_a_required_claim_is_rejected(token_verifier, signing_key, missing):
    body = claims()
    del body[missing]
    token = jwt.encode(body, signing_key.private_key, "RS256", headers={"kid": signing_key.kid})

    with pytest.raises(TokenError):
        await token_verifier.verify(token)


@pytest.mark.parametrize(
    "garbage",
    ["", "not-a-token", "a.b.c", "....", "eyJhbGciOiJSUzI1NiJ9", "eyJ9.eyJ9.eyJ9", "Bearer xyz", "\x00\xff"],
)
async def test_garbage_strings_raise_token_error(token_verifier, garbage):
    with pytest.raises(TokenError):
        await token_verifier.verify(garbage)


@settings(max_examples=200, deadline=None)
@given(token=st.text() | st.from_regex(r"\A[A-Za-z0-9_-]{0,40}(\.[A-Za-z0-9_-]{0,40}){2}\Z"))
async def test_arbitrary_strings_only_ever_raise_token_error(token_verifier, token):
    with pytest.raises(TokenError):
        await token_verifier.verify(token)


def test_verifier_requires_a_key_source():
    with pytest.raises(ValueError, match="jwks"):
        TokenVerifier(issuer=ISSUER, audience=AUDIENCE)


def test_roles_are_ordered_user_operator_admin():
    assert Role.user < Role.operator < Role.admin
    assert sorted([Role.admin, Role.user, Role.operator]) == [Role.user, Role.operator, Role.admin]


@pytest.mark.parametrize(
    ("roles", "effective", "allowed"),
    [
        ({"user"}, Role.user, {Role.user}),
        ({"operator"}, Role.operator, {Role.user, Role.operator}),
        ({"admin"}, Role.admin, {Role.user, Role.operator, Role.admin}),
        ({"user", "admin"}, Role.admin, {Role.user, Role.operator, Role.admin}),
        ({"superuser", "root"}, Role.user, {Role.user}),
        (set(), Role.user, {Role.user}),
    ],
)
def test_principal_role_is_the_highest_known_role(roles, effective, allowed):
    principal = Principal(user_id="p", roles=frozenset(roles))

    assert principal.role is effective
    assert {r for r in Role if principal.has_role(r)} == allowed


async def test_token_not_yet_valid_beyond_the_leeway_is_rejected(token_verifier, signing_key):
    later = int(time.time()) + int(token_verifier.leeway_s) + 120
    token = jwt.encode(
        claims(nbf=later, iat=later), signing_key.private_key, "RS256", headers={"kid": signing_key.kid}
    )

    with pytest.raises(TokenError, match=r"(?i)not yet valid"):
        await token_verifier.verify(token)


class _Revoked:
    def __init__(self, *jtis: str, sessions: tuple[str, ...] = ()) -> None:
        self.jtis = set(jtis)
        self.sessions = set(sessions)
        self.asked: list[str] = []

    async def is_revoked(self, jti: str, session_id: str | None = None) -> bool:
        self.asked.append(jti)
        return jti in self.jtis or session_id in self.sessions


async def test_a_revoked_jti_is_rejected_and_others_pass(token_verifier, signing_key):
    revoked = jwt.encode(
        claims(jti="gone"), signing_key.private_key, "RS256", headers={"kid": signing_key.kid}
    )
    live = jwt.encode(
        claims(jti="live", sid="s1"), signing_key.private_key, "RS256", headers={"kid": signing_key.kid}
    )
    check = _Revoked("gone")
    verifier = token_verifier.with_revocation(check)

    with pytest.raises(TokenError, match="revoked"):
        await verifier.verify(revoked)
    principal = await verifier.verify(live)
    assert (principal.token_id, principal.session_id) == ("live", "s1")
    assert check.asked == ["gone", "live"]
    assert token_verifier.revocation is None  # the shared verifier itself is unchanged
    assert (await token_verifier.verify(revoked)).user_id == "u1"


async def test_every_token_of_a_revoked_session_is_rejected(token_verifier, signing_key):
    def token(jti: str, sid: str) -> str:
        return jwt.encode(
            claims(jti=jti, sid=sid), signing_key.private_key, "RS256", headers={"kid": signing_key.kid}
        )

    verifier = token_verifier.with_revocation(_Revoked(sessions=("logged-out",)))
    for jti in ("first", "after-refresh"):  # both access tokens of the session, not only the one presented
        with pytest.raises(TokenError, match="revoked"):
            await verifier.verify(token(jti, "logged-out"))
    assert (await verifier.verify(token("other", "still-in"))).session_id == "still-in"


async def test_an_unreachable_revocation_list_fails_closed(token_verifier, mint):
    class Broken:
        async def is_revoked(self, jti: str, session_id: str | None = None) -> bool:
            raise ConnectionError("redis down")

    with pytest.raises(TokenError, match="revocation"):
        await token_verifier.with_revocation(Broken()).verify(mint("u1"))


async def test_requests_waiting_on_a_stale_key_set_share_one_refetch(signing_key, mint):
    """When the cached JWKS goes stale under load, the requests queued behind the refetch use its keys:
    one fetch, not one per waiting request (each fetch built a TLS-capable client: a CPU spike every
    ``cache_ttl_s`` on every service)."""
    body = json.dumps(signing_key.jwks()).encode()
    fetches = []

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        fetches.append(1)
        await asyncio.sleep(0.05)  # a fetch takes a while: the other requests queue meanwhile
        head = f"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: {len(body)}\r\n"
        writer.write(head.encode() + b"connection: close\r\n\r\n" + body)
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    verifier = TokenVerifier(
        issuer=ISSUER,
        audience=AUDIENCE,
        jwks_url=f"http://127.0.0.1:{port}/jwks",
        cache_ttl_s=300,
        reuse_s=0,  # every request checks the signature (so needs the keys)
    )
    try:
        token = mint("u1")
        await verifier.verify(token)  # the first fetch
        verifier._fetched_at -= 301  # the key set goes stale
        principals = await asyncio.gather(*(verifier.verify(token) for _ in range(20)))
    finally:
        server.close()
        await server.wait_closed()

    assert {p.user_id for p in principals} == {"u1"}
    assert len(fetches) == 2


class _Clock:
    def __init__(self) -> None:
        self.now = time.time()

    def __call__(self) -> float:
        return self.now


def remembering_verifier(signing_key, clock: _Clock, **kwargs: object) -> TokenVerifier:
    return TokenVerifier(issuer=ISSUER, audience=AUDIENCE, jwks=signing_key.jwks(), clock=clock, **kwargs)


async def test_a_token_verified_before_still_expires(signing_key):
    clock = _Clock()
    verifier = remembering_verifier(signing_key, clock)
    now = int(clock.now)
    token = jwt.encode(
        claims(iat=now, nbf=now, exp=now + 40),
        signing_key.private_key,
        "RS256",
        headers={"kid": signing_key.kid},
    )
    assert (await verifier.verify(token)).user_id == "u1"  # checked, then remembered

    clock.now = now + 40 + verifier.leeway_s - 1  # within the leeway: still accepted, from memory
    assert (await verifier.verify(token)).user_id == "u1"
    clock.now = now + 40 + verifier.leeway_s  # as PyJWT judges it: expired
    with pytest.raises(TokenError, match="expired"):
        await verifier.verify(token)


async def test_a_token_verified_before_is_refused_once_revoked(signing_key):
    clock = _Clock()
    check = _Revoked()
    verifier = remembering_verifier(signing_key, clock, revocation=check)
    token = jwt.encode(claims(jti="t1"), signing_key.private_key, "RS256", headers={"kid": signing_key.kid})
    assert (await verifier.verify(token)).token_id == "t1"

    check.jtis.add("t1")  # logged out meanwhile
    with pytest.raises(TokenError, match="revoked"):
        await verifier.verify(token)
    assert check.asked == ["t1", "t1"]  # asked on every request, remembered or not


async def test_only_the_very_same_token_is_remembered(signing_key, other_key):
    clock = _Clock()
    verifier = remembering_verifier(signing_key, clock)
    token = jwt.encode(claims(), signing_key.private_key, "RS256", headers={"kid": signing_key.kid})
    await verifier.verify(token)
    header, payload, signature = token.split(".")
    forged_payload = base64.urlsafe_b64encode(json.dumps(claims(sub="admin")).encode()).rstrip(b"=").decode()
    forged_signature = jwt.encode(
        claims(), other_key.private_key, "RS256", headers={"kid": signing_key.kid}
    ).split(".")[2]

    for forged in (f"{header}.{forged_payload}.{signature}", f"{header}.{payload}.{forged_signature}"):
        with pytest.raises(TokenError):
            await verifier.verify(forged)


async def test_a_remembered_token_is_checked_afresh_after_reuse_s(signing_key):
    clock = _Clock()
    verifier = remembering_verifier(signing_key, clock, reuse_s=60)
    token = jwt.encode(claims(), signing_key.private_key, "RS256", headers={"kid": signing_key.kid})
    await verifier.verify(token)
    assert token in verifier._verified

    clock.now += 61
    await verifier.verify(token)  # checked again (and remembered again, from now)
    assert verifier._verified[token][0] == clock.now
