"""Sign-up and sign-in through the gateway of the embedded stack: every auth endpoint's happy path and
its documented errors (SPEC §9), tokens the auth service issues checked by ANOTHER service (profile),
and forged or stale tokens refused there."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from urllib.parse import parse_qs, urlsplit

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives import serialization

from spendsense_shared.jwk import SigningKey
from spendsense_shared.testing.fakes import load_beside

support = load_beside(__file__, "e2e_support.py", "spendsense_e2e_support")
Stack = support.Stack
PASSWORD = support.PASSWORD

pytestmark = pytest.mark.stack

TOKEN_KEYS = {"access_token", "refresh_token", "token_type", "expires_in", "user"}


def post(stack: Stack, path: str, body: object | None = None, token: str | None = None) -> httpx.Response:
    headers = support.bearer(token) if token else {}
    return httpx.post(f"{stack.gateway}{path}", json=body, headers=headers, timeout=30)


def get(stack: Stack, path: str, token: str | None = None) -> httpx.Response:
    headers = support.bearer(token) if token else {}
    return httpx.get(f"{stack.gateway}{path}", headers=headers, timeout=30)


def consent_of(stack: Stack, user_id: str, token: str) -> httpx.Response:
    """A route of the profile service: whether it accepts the token."""
    return get(stack, f"/api/v1/consent/{user_id}", token)


def error_code(response: httpx.Response) -> str:
    return str(response.json()["error"]["code"])


def admin_token(stack: Stack) -> str:
    email, password = stack.admin_credentials()
    response = support.login(stack.gateway, email, password)
    assert response.status_code == 200, response.text
    assert "admin" in response.json()["user"]["roles"]
    return str(response.json()["access_token"])


# --- register -----------------------------------------------------------------------------------------


def test_register_answers_201_with_the_spec_token_pair_that_another_service_accepts(stack: Stack) -> None:
    email = support.unique_email("Reg")
    response = post(stack, "/api/v1/auth/register", {"email": email, "password": PASSWORD})
    assert response.status_code == 201, response.text
    body = response.json()
    assert set(body) == TOKEN_KEYS
    assert body["token_type"] == "bearer"
    assert body["expires_in"] == 3600  # access tokens live 1 h (SPEC §9)
    assert body["access_token"]
    assert body["refresh_token"]
    assert set(body["user"]) == {"id", "email", "roles"}
    assert body["user"]["email"] == email.lower()
    assert body["user"]["roles"] == ["user"]
    claims = jwt.decode(body["access_token"], options={"verify_signature": False})
    assert jwt.get_unverified_header(body["access_token"])["alg"] == "RS256"
    assert claims["sub"] == body["user"]["id"]
    # The profile service verifies the auth service's token through the JWKS.
    consent = consent_of(stack, body["user"]["id"], body["access_token"])
    assert consent.status_code == 200, consent.text
    assert consent.json()["user_id"] == body["user"]["id"]


def test_a_weak_password_is_a_422_naming_every_failed_rule(stack: Stack) -> None:
    response = post(stack, "/api/v1/auth/register", {"email": support.unique_email(), "password": "short"})
    assert response.status_code == 422, response.text
    error = response.json()["error"]
    assert error["code"] == "weak_password"
    assert [d["rule"] for d in error["details"]] == ["min_length", "uppercase", "digit", "symbol"]
    assert all(d["field"] == "password" for d in error["details"])
    common = post(
        stack, "/api/v1/auth/register", {"email": support.unique_email(), "password": "Password123!!"}
    )
    assert common.status_code == 422, common.text
    assert [d["rule"] for d in common.json()["error"]["details"]] == ["common"]


def test_a_taken_email_or_username_is_a_409(stack: Stack) -> None:
    email = support.unique_email()
    username = f"e2e_{time.time_ns() % 10**9}"
    support.register(stack.gateway, email, username=username)
    again = post(stack, "/api/v1/auth/register", {"email": email.upper(), "password": PASSWORD})
    assert again.status_code == 409, again.text
    assert error_code(again) == "email_taken"
    taken = post(
        stack,
        "/api/v1/auth/register",
        {"email": support.unique_email(), "password": PASSWORD, "username": username},
    )
    assert taken.status_code == 409, taken.text
    assert error_code(taken) == "username_taken"


@pytest.mark.parametrize("email", ["not-an-email", "two@@example.com", "nobody@"])
def test_an_invalid_email_is_a_422_naming_the_field(stack: Stack, email: str) -> None:
    response = post(stack, "/api/v1/auth/register", {"email": email, "password": PASSWORD})
    assert response.status_code == 422, response.text
    error = response.json()["error"]
    assert error["code"] == "validation_error"
    assert error["details"][0]["field"] == "email"


# --- login --------------------------------------------------------------------------------------------


def test_login_answers_200_with_a_new_pair_by_email_or_username(stack: Stack) -> None:
    email = support.unique_email()
    username = f"e2e_{time.time_ns() % 10**9}"
    signed_up = support.register(stack.gateway, email, username=username)
    by_email = support.login(stack.gateway, email.upper())
    assert by_email.status_code == 200, by_email.text
    body = by_email.json()
    assert set(body) == TOKEN_KEYS
    assert body["token_type"] == "bearer"
    assert body["user"] == signed_up["user"]
    assert body["refresh_token"] != signed_up["refresh_token"]
    by_username = post(stack, "/api/v1/auth/login", {"username": username.upper(), "password": PASSWORD})
    assert by_username.status_code == 200, by_username.text
    assert by_username.json()["user"]["id"] == signed_up["user"]["id"]


def test_a_wrong_password_and_an_unknown_user_get_the_same_401(stack: Stack) -> None:
    email = support.unique_email()
    support.register(stack.gateway, email)
    wrong = support.login(stack.gateway, email, "Wrong-Horse-9-Battery")
    unknown = support.login(stack.gateway, support.unique_email("nobody"), "Wrong-Horse-9-Battery")
    for response in (wrong, unknown):
        assert response.status_code == 401, response.text
        assert error_code(response) == "invalid_credentials"
        assert response.headers["www-authenticate"] == "Bearer"
    assert wrong.content == unknown.content


# --- refresh ------------------------------------------------------------------------------------------


def refresh(stack: Stack, token: str) -> httpx.Response:
    return post(stack, "/api/v1/auth/refresh", {"refresh_token": token})


def test_refresh_rotates_and_a_reused_token_revokes_the_whole_family(stack: Stack) -> None:
    first = support.register(stack.gateway)
    second = refresh(stack, first["refresh_token"])
    assert second.status_code == 200, second.text
    assert set(second.json()) == TOKEN_KEYS
    assert second.json()["refresh_token"] != first["refresh_token"]
    assert second.json()["access_token"] != first["access_token"]
    assert second.json()["user"] == first["user"]
    third = refresh(stack, second.json()["refresh_token"])
    assert third.status_code == 200, third.text
    newest = third.json()["refresh_token"]

    reused = refresh(stack, first["refresh_token"])  # spent: it leaked
    assert reused.status_code == 401, reused.text
    assert error_code(reused) == "token_reused"
    # The whole family is revoked: even the newest refresh token is refused.
    after = refresh(stack, newest)
    assert after.status_code == 401, after.text
    assert error_code(after) in ("token_revoked", "token_reused")
    # ...and so is every access token issued in it, by any service.
    for issued in (first["access_token"], third.json()["access_token"]):
        refused = get(stack, f"/api/v1/consent/{first['user']['id']}", issued)
        assert refused.status_code == 401, refused.text

    unknown = refresh(stack, "not-a-refresh-token")
    assert unknown.status_code == 401
    assert error_code(unknown) == "invalid_token"


# --- logout -------------------------------------------------------------------------------------------


def test_after_logout_another_service_refuses_the_access_token(stack: Stack) -> None:
    email = support.unique_email()
    session = support.register(stack.gateway, email)
    other = support.login(stack.gateway, email).json()  # a second session, on another device
    user_id = session["user"]["id"]
    assert consent_of(stack, user_id, session["access_token"]).status_code == 200

    out = post(
        stack, "/api/v1/auth/logout", {"refresh_token": session["refresh_token"]}, session["access_token"]
    )
    assert out.status_code == 204, out.text

    refused = consent_of(stack, user_id, session["access_token"])
    assert refused.status_code == 401, refused.text
    assert error_code(refused) == "unauthorized"
    again = post(stack, "/api/v1/auth/logout", None, session["access_token"])
    assert again.status_code == 401
    assert refresh(stack, session["refresh_token"]).status_code == 401
    # The other session is untouched.
    assert consent_of(stack, user_id, other["access_token"]).status_code == 200
    assert refresh(stack, other["refresh_token"]).status_code == 200


def test_logout_refuses_every_access_token_of_the_session(stack: Stack) -> None:
    first = support.register(stack.gateway)
    rotated = refresh(stack, first["refresh_token"]).json()
    assert post(stack, "/api/v1/auth/logout", None, rotated["access_token"]).status_code == 204
    for token in (first["access_token"], rotated["access_token"]):  # the earlier one too
        refused = get(stack, f"/api/v1/consent/{first['user']['id']}", token)
        assert refused.status_code == 401, refused.text
    other = support.register(stack.gateway)  # another user's session is untouched
    assert get(stack, f"/api/v1/consent/{other['user']['id']}", other["access_token"]).status_code == 200


def test_logout_needs_a_bearer_token(stack: Stack) -> None:
    response = post(stack, "/api/v1/auth/logout")
    assert response.status_code == 401
    assert error_code(response) == "unauthorized"


# --- users --------------------------------------------------------------------------------------------


def test_a_user_reads_and_edits_only_their_own_account(stack: Stack) -> None:
    email = support.unique_email()
    me = support.register(stack.gateway, email)
    someone = support.register(stack.gateway)
    token, user_id = me["access_token"], me["user"]["id"]

    mine = get(stack, f"/api/v1/users/{user_id}", token)
    assert mine.status_code == 200, mine.text
    assert mine.json()["id"] == user_id
    assert mine.json()["email"] == email
    assert mine.json()["roles"] == ["user"]
    assert [i["provider"] for i in mine.json()["identities"]] == ["password"]

    theirs = get(stack, f"/api/v1/users/{someone['user']['id']}", token)
    assert theirs.status_code == 403, theirs.text
    assert error_code(theirs) == "forbidden"

    username = f"me_{time.time_ns() % 10**9}"
    edited = httpx.put(
        f"{stack.gateway}/api/v1/users/{user_id}",
        json={"display_name": "Me Myself", "username": username},
        headers=support.bearer(token),
        timeout=30,
    )
    assert edited.status_code == 200, edited.text
    assert edited.json()["display_name"] == "Me Myself"
    assert edited.json()["username"] == username
    assert get(stack, f"/api/v1/users/{user_id}", token).json()["display_name"] == "Me Myself"
    not_mine = httpx.put(
        f"{stack.gateway}/api/v1/users/{someone['user']['id']}",
        json={"display_name": "Hijacked"},
        headers=support.bearer(token),
        timeout=30,
    )
    assert not_mine.status_code == 403, not_mine.text

    assert get(stack, f"/api/v1/users/{user_id}").status_code == 401


def test_an_admin_creates_a_user_and_grants_operator_which_the_next_login_carries(stack: Stack) -> None:
    admin = admin_token(stack)
    email = support.unique_email("staff")
    created = post(stack, "/api/v1/users", {"email": email, "password": PASSWORD}, admin)
    assert created.status_code == 201, created.text
    user_id = created.json()["id"]
    assert created.json()["email"] == email
    assert created.json()["roles"] == ["user"]

    before = support.login(stack.gateway, email)
    assert before.status_code == 200, before.text
    assert before.json()["user"]["roles"] == ["user"]

    granted = post(stack, f"/api/v1/users/{user_id}/roles", {"role": "operator"}, admin)
    assert granted.status_code == 200, granted.text
    assert "operator" in granted.json()["roles"]

    after = support.login(stack.gateway, email)
    assert after.status_code == 200, after.text
    assert set(after.json()["user"]["roles"]) == {"user", "operator"}
    claims = jwt.decode(after.json()["access_token"], options={"verify_signature": False})
    assert "operator" in claims["roles"]
    # The role works: an operator reads another account, which a user may not.
    someone = support.register(stack.gateway)["user"]["id"]
    assert get(stack, f"/api/v1/users/{someone}", after.json()["access_token"]).status_code == 200
    assert get(stack, f"/api/v1/users/{someone}", before.json()["access_token"]).status_code == 403


def test_a_non_admin_may_neither_create_users_nor_grant_roles(stack: Stack) -> None:
    user = support.register(stack.gateway)
    token, user_id = user["access_token"], user["user"]["id"]
    created = post(stack, "/api/v1/users", {"email": support.unique_email(), "password": PASSWORD}, token)
    assert created.status_code == 403, created.text
    assert error_code(created) == "forbidden"
    granted = post(stack, f"/api/v1/users/{user_id}/roles", {"role": "admin"}, token)
    assert granted.status_code == 403, granted.text
    assert support.login(stack.gateway, user["user"]["email"]).json()["user"]["roles"] == ["user"]
    assert post(stack, "/api/v1/users", {"email": support.unique_email()}).status_code == 401


# --- rate limits --------------------------------------------------------------------------------------


def test_the_per_account_login_limit_answers_429_with_retry_after(stack: Stack) -> None:
    email = support.unique_email("limited")
    support.register(stack.gateway, email)
    statuses = [support.login(stack.gateway, email, "Wrong-Horse-9-Battery").status_code for _ in range(10)]
    assert statuses == [401] * 10  # 10 attempts a minute per account (the shipped default)
    limited = support.login(stack.gateway, email)  # even the right password, now
    assert limited.status_code == 429, limited.text
    assert error_code(limited) == "rate_limited"
    assert 1 <= int(limited.headers["retry-after"]) <= 60
    # Another account, from the same address, is not affected.
    other = support.unique_email()
    support.register(stack.gateway, other)
    assert support.login(stack.gateway, other).status_code == 200


# --- phone --------------------------------------------------------------------------------------------


def request_code(stack: Stack, phone: str) -> str:
    response = post(stack, "/api/v1/auth/phone/request", {"phone": phone})
    assert response.status_code == 202, response.text
    assert response.json() == {"phone": phone, "expires_in": 600}
    return support.last_code(stack.aws, phone)


def test_a_phone_number_signs_up_with_the_code_from_the_sms(stack: Stack) -> None:
    phone = support.a_number()
    code = request_code(stack, phone)
    assert (
        support.sent_sms(stack.aws, phone)[-1] == f"Your SpendSense code is {code}. It expires in 10 minutes."
    )
    verified = post(stack, "/api/v1/auth/phone/verify", {"phone": phone, "code": code})
    assert verified.status_code == 200, verified.text
    body = verified.json()
    assert set(body) == TOKEN_KEYS
    assert body["token_type"] == "bearer"
    assert body["user"]["email"] is None
    assert body["user"]["roles"] == ["user"]
    assert consent_of(stack, body["user"]["id"], body["access_token"]).status_code == 200
    # The code is single use; a new one signs in to the same account.
    reused = post(stack, "/api/v1/auth/phone/verify", {"phone": phone, "code": code})
    assert reused.status_code == 400, reused.text
    again = post(stack, "/api/v1/auth/phone/verify", {"phone": phone, "code": request_code(stack, phone)})
    assert again.status_code == 200, again.text
    assert again.json()["user"]["id"] == body["user"]["id"]


def test_three_wrong_codes_then_the_fourth_attempt_is_refused(stack: Stack) -> None:
    phone = support.a_number()
    code = request_code(stack, phone)
    wrong = f"{(int(code) + 1) % 10**6:06d}"
    for _ in range(3):
        response = post(stack, "/api/v1/auth/phone/verify", {"phone": phone, "code": wrong})
        assert response.status_code == 400, response.text
        assert error_code(response) == "invalid_code"
    fourth = post(stack, "/api/v1/auth/phone/verify", {"phone": phone, "code": code})  # even the right one
    assert fourth.status_code == 429, fourth.text
    assert error_code(fourth) == "code_locked"


def test_a_malformed_number_is_a_422(stack: Stack) -> None:
    response = post(stack, "/api/v1/auth/phone/request", {"phone": "12"})
    assert response.status_code == 422, response.text
    assert error_code(response) == "validation_error"


# --- OAuth --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("provider", ["github", "facebook", "apple"])
def test_a_provider_without_credentials_answers_503(stack: Stack, provider: str) -> None:
    response = get(stack, f"/api/v1/auth/oauth/{provider}/authorize")
    assert response.status_code == 503, response.text
    assert error_code(response) == "provider_not_configured"


def test_an_unknown_provider_is_a_404(stack: Stack) -> None:
    response = get(stack, "/api/v1/auth/oauth/myspace/authorize")
    assert response.status_code == 404, response.text
    assert error_code(response) == "unknown_provider"


def google_sign_in(stack: Stack) -> httpx.Response:
    """Authorize at the gateway → the local Google (auto-approves) → back to the gateway's callback."""
    started = get(stack, "/api/v1/auth/oauth/google/authorize")
    assert started.status_code == 302, started.text
    to_provider = started.headers["location"]
    assert to_provider.startswith(stack.providers.google.base_url + "/authorize?")
    assert parse_qs(urlsplit(to_provider).query)["code_challenge_method"] == ["S256"]
    at_provider = httpx.get(to_provider, timeout=30)
    assert at_provider.status_code == 302, at_provider.text
    back = at_provider.headers["location"]
    assert back.startswith(f"{stack.gateway}/api/v1/auth/oauth/google/callback?"), back
    return httpx.get(back, timeout=30)


def test_signing_in_with_google_end_to_end(stack: Stack) -> None:
    google = stack.providers.google
    google.user = type(google.user)(sub=f"g-{time.time_ns()}", email=support.unique_email("google"), name="G")
    try:
        first = google_sign_in(stack)
        assert first.status_code == 200, first.text
        body = first.json()
        assert set(body) == TOKEN_KEYS
        assert body["user"]["email"] == google.user.email
        assert consent_of(stack, body["user"]["id"], body["access_token"]).status_code == 200
        account = get(stack, f"/api/v1/users/{body['user']['id']}", body["access_token"]).json()
        assert [i["provider"] for i in account["identities"]] == ["google"]
        again = google_sign_in(stack)
        assert again.status_code == 200, again.text
        assert again.json()["user"]["id"] == body["user"]["id"]
    finally:
        google.reset()


def test_a_callback_with_a_forged_state_is_refused(stack: Stack) -> None:
    response = get(stack, "/api/v1/auth/oauth/google/callback?code=abc&state=forged")
    assert response.status_code == 400, response.text
    assert error_code(response) == "invalid_state"


# --- token attacks on another service -----------------------------------------------------------------


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def unsigned(header: dict, claims: dict, secret: bytes | None = None) -> str:
    """A JWT assembled by hand (PyJWT refuses these on purpose): no signature, or HMAC-SHA256 with ``secret``."""
    signing_input = f"{b64(json.dumps(header).encode())}.{b64(json.dumps(claims).encode())}"
    if secret is None:
        return signing_input + "."
    signature = hmac.new(secret, signing_input.encode(), hashlib.sha256).digest()
    return f"{signing_input}.{b64(signature)}"


def test_forged_and_stale_tokens_are_refused_by_the_profile_service(stack: Stack) -> None:
    user = support.register(stack.gateway)
    user_id = user["user"]["id"]
    key = SigningKey.from_pem((stack.state_dir / "keys" / "jwt.pem").read_bytes())

    def signed(**overrides: object) -> str:
        kwargs: dict = {"roles": ["user"], "issuer": "spendsense-auth", "audience": "spendsense", **overrides}
        return key.sign(user_id, **kwargs)

    # The control: a token signed the right way is accepted.
    assert consent_of(stack, user_id, signed()).status_code == 200

    jwks = get(stack, "/api/v1/auth/.well-known/jwks.json").json()["keys"][0]
    public_pem = jwt.algorithms.RSAAlgorithm.from_jwk(jwks).public_bytes(  # type: ignore[union-attr]
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    claims = jwt.decode(user["access_token"], options={"verify_signature": False})
    now = int(time.time())
    claims |= {"roles": ["user", "operator", "admin"], "iat": now, "nbf": now, "exp": now + 600}
    attacks = {
        "alg none": unsigned({"alg": "none", "typ": "JWT", "kid": jwks["kid"]}, claims),
        "alg None": unsigned({"alg": "None", "typ": "JWT"}, claims),
        "HS256 with the public key": unsigned(
            {"alg": "HS256", "typ": "JWT", "kid": jwks["kid"]}, claims, public_pem
        ),
        "expired": signed(ttl_s=-300),
        "wrong audience": signed(audience="someone-else"),
        "wrong issuer": signed(issuer="evil-auth"),
        "another key, same kid": jwt.encode(
            {**claims, "iss": "spendsense-auth", "aud": "spendsense"},
            SigningKey.generate().private_key,
            algorithm="RS256",
            headers={"kid": jwks["kid"]},
        ),
        "tampered roles": ".".join(
            [
                user["access_token"].split(".")[0],
                b64(json.dumps(claims).encode()),
                user["access_token"].split(".")[2],
            ]
        ),
        "a refresh token": user["refresh_token"],
    }
    accepted = {}
    for name, token in attacks.items():
        response = consent_of(stack, user_id, token)
        if response.status_code != 401:
            accepted[name] = (response.status_code, response.text)
        else:
            assert error_code(response) == "unauthorized", name
            assert response.headers["www-authenticate"] == "Bearer", name
    assert accepted == {}
