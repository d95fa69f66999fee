"""``/api/v1/auth/phone`` through the real app on PostgreSQL, Redis and the AWS emulator: every code is
read back from the SMS the emulator recorded."""

from __future__ import annotations

import asyncio
import random

import pytest
from sqlalchemy import select

from spendsense_auth.adapters.orm import identities, messaging
from spendsense_auth.bootstrap import SERVICE
from spendsense_shared.testing.fakes import load_beside

inbox = load_beside(__file__, "sms_inbox.py", "spendsense_auth_sms_inbox")

PASSWORD = "Correct-Horse-9-Battery"


def a_number() -> str:
    """A valid US mobile-or-fixed number, different in each test (the emulator's SMS log is shared)."""
    return f"+1415555{random.randrange(10**4):04d}"


@pytest.fixture
async def auth(service_client, topology, signing_key):
    # The app signs with the key the test verifier trusts, so its own tokens work on its own routes.
    return await service_client(SERVICE, jwt_private_key=signing_key.pem().decode())


async def request_code(auth, phone: str, path: str = "request", typed: str | None = None) -> str:
    response = await auth.post(f"/api/v1/auth/phone/{path}", json={"phone": typed or phone})
    assert response.status_code == 202, response.text
    assert response.json() == {"phone": phone, "expires_in": 600}
    return await inbox.last_code(auth.platform.settings.aws_endpoint_url, phone)


async def sign_in(auth, phone: str) -> dict:
    code = await request_code(auth, phone)
    response = await auth.post("/api/v1/auth/phone/verify", json={"phone": phone, "code": code})
    assert response.status_code == 200, response.text
    return response.json()


def bearer(tokens: dict) -> dict[str, str]:
    return {"Authorization": f"Bearer {tokens['access_token']}"}


async def outbox(auth) -> list[dict]:
    async with auth.platform.database.engine.connect() as conn:
        rows = (await conn.execute(select(messaging.outbox.c.payload).order_by(messaging.outbox.c.seq))).all()
    return [r.payload for r in rows]


async def phone_identities(auth) -> list[tuple[str, str]]:
    async with auth.platform.database.engine.connect() as conn:
        rows = (await conn.execute(select(identities).where(identities.c.provider == "phone"))).all()
    return [(r.user_id, r.subject) for r in rows]


async def test_a_new_number_signs_up_and_then_signs_in_to_the_same_account(auth) -> None:
    phone = a_number()
    code = await request_code(auth, phone, typed=phone.replace("+1415", "+1 (415) "))  # normalized
    [message] = await inbox.sent_sms(auth.platform.settings.aws_endpoint_url, phone)
    assert message == f"Your SpendSense code is {code}. It expires in 10 minutes."

    response = await auth.post("/api/v1/auth/phone/verify", json={"phone": phone, "code": code})
    assert response.status_code == 200, response.text
    first = response.json()
    assert first["token_type"] == "bearer"
    assert first["user"]["roles"] == ["user"]
    assert first["user"]["email"] is None
    assert set(first) >= {"access_token", "refresh_token", "expires_in", "user"}
    registered = [e for e in await outbox(auth) if e["type"] == "user.registered"]
    assert [e["data"]["registered_via"] for e in registered] == ["phone"]
    assert await phone_identities(auth) == [(first["user"]["id"], phone)]

    again = await sign_in(auth, phone)
    assert again["user"]["id"] == first["user"]["id"]
    assert len([e for e in await outbox(auth) if e["type"] == "user.registered"]) == 1
    # The tokens are real: the refresh token works at /auth/refresh.
    refreshed = await auth.post("/api/v1/auth/refresh", json={"refresh_token": again["refresh_token"]})
    assert refreshed.status_code == 200, refreshed.text


@pytest.mark.parametrize(
    "body",
    [
        {"phone": "4155552671"},
        {"phone": "+1 555 555 0100"},
        {"phone": "+1-800-FLOWERS"},
        {"phone": ""},
        {"phone": 14155552671},
        {"phone": "+1" + "4" * 100},
        {},
        {"phone": "+14155552671", "extra": 1},
    ],
)
async def test_a_malformed_number_is_a_422_naming_the_field_and_sends_nothing(auth, body) -> None:
    response = await auth.post("/api/v1/auth/phone/request", json=body)
    assert response.status_code == 422, response.text
    error = response.json()["error"]
    assert error["code"] == "validation_error"
    assert {d["field"] for d in error["details"]} & {"phone", "extra"}


@pytest.mark.parametrize("code", ["12345", "abcdef", "1234567", ""])
async def test_a_malformed_code_is_a_422(auth, code) -> None:
    response = await auth.post("/api/v1/auth/phone/verify", json={"phone": a_number(), "code": code})
    assert response.status_code == 422
    assert response.json()["error"]["details"][0]["field"] == "code"


async def test_three_wrong_codes_then_even_the_right_one_is_refused_and_the_code_is_void(auth) -> None:
    phone = a_number()
    code = await request_code(auth, phone)
    wrong = f"{(int(code) + 1) % 10**6:06d}"
    for left in (2, 1, 0):
        response = await auth.post("/api/v1/auth/phone/verify", json={"phone": phone, "code": wrong})
        assert response.status_code == 400
        assert response.json()["error"]["code"] == "invalid_code"
        assert f"{left} attempt" in response.json()["error"]["message"]
    for _ in range(2):
        response = await auth.post("/api/v1/auth/phone/verify", json={"phone": phone, "code": code})
        assert response.status_code == 429
        assert response.json()["error"]["code"] == "code_locked"
    assert await phone_identities(auth) == []
    # A new code works.
    assert (await sign_in(auth, phone))["user"]["id"]


async def test_a_code_is_single_use(auth) -> None:
    phone = a_number()
    code = await request_code(auth, phone)
    assert (
        await auth.post("/api/v1/auth/phone/verify", json={"phone": phone, "code": code})
    ).status_code == 200
    reused = await auth.post("/api/v1/auth/phone/verify", json={"phone": phone, "code": code})
    assert reused.status_code == 400
    assert reused.json()["error"]["code"] == "code_expired"


async def test_a_resend_replaces_the_previous_code(auth) -> None:
    phone = a_number()
    old = await request_code(auth, phone)
    new = await request_code(auth, phone, "resend")
    if old != new:  # one chance in a million they are equal
        stale = await auth.post("/api/v1/auth/phone/verify", json={"phone": phone, "code": old})
        assert stale.json()["error"]["code"] == "invalid_code"
    assert (
        await auth.post("/api/v1/auth/phone/verify", json={"phone": phone, "code": new})
    ).status_code == 200


async def test_an_expired_code_is_refused(service_client, topology, signing_key) -> None:
    auth = await service_client(SERVICE, jwt_private_key=signing_key.pem().decode(), phone_code_ttl_s=1)
    phone = a_number()
    response = await auth.post("/api/v1/auth/phone/request", json={"phone": phone})
    assert response.json()["expires_in"] == 1
    code = await inbox.last_code(auth.platform.settings.aws_endpoint_url, phone)
    await asyncio.sleep(1.2)
    expired = await auth.post("/api/v1/auth/phone/verify", json={"phone": phone, "code": code})
    assert expired.status_code == 400
    assert expired.json()["error"]["code"] == "code_expired"


async def test_the_sixth_sms_in_an_hour_is_refused_with_retry_after(auth) -> None:
    phone = a_number()
    for _ in range(5):
        await request_code(auth, phone)
    response = await auth.post("/api/v1/auth/phone/resend", json={"phone": phone})
    assert response.status_code == 429
    assert response.json()["error"]["code"] == "rate_limited"
    assert 0 < int(response.headers["Retry-After"]) <= 3600
    assert len(await inbox.sent_sms(auth.platform.settings.aws_endpoint_url, phone)) == 5


async def test_the_per_address_limit_spans_numbers(service_client, topology, signing_key) -> None:
    auth = await service_client(
        SERVICE, jwt_private_key=signing_key.pem().decode(), phone_sms_per_ip_per_hour=2
    )
    for _ in range(2):
        await request_code(auth, a_number())
    response = await auth.post("/api/v1/auth/phone/request", json={"phone": a_number()})
    assert response.status_code == 429
    assert "Retry-After" in response.headers


async def test_linking_a_number_held_by_another_account_merges_it(auth) -> None:
    registered = await auth.post(
        "/api/v1/auth/register", json={"email": f"{a_number()[1:]}@example.com", "password": PASSWORD}
    )
    assert registered.status_code == 201, registered.text
    me = registered.json()
    phone = a_number()
    other = await sign_in(auth, phone)  # the number already has an account of its own

    code = await request_code(auth, phone)
    response = await auth.post(
        "/api/v1/auth/phone/link", json={"phone": phone, "code": code}, headers=bearer(me)
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["user"]["id"] == me["user"]["id"]
    assert body["merged_from"] == other["user"]["id"]
    merged = [e["data"] for e in await outbox(auth) if e["type"] == "user.merged"]
    assert merged == [{"source_user_id": other["user"]["id"], "target_user_id": me["user"]["id"]}]
    # The number now signs in to the account it was linked to.
    assert (await sign_in(auth, phone))["user"]["id"] == me["user"]["id"]

    unlinked = await auth.delete("/api/v1/auth/phone/unlink", headers=bearer(me))
    assert unlinked.status_code == 200, unlinked.text
    assert unlinked.json()["user"]["id"] == me["user"]["id"]
    assert await phone_identities(auth) == []
    again = await auth.delete("/api/v1/auth/phone/unlink", headers=bearer(me))
    assert again.status_code == 404


async def test_linking_a_free_number_adds_it(auth) -> None:
    registered = await auth.post(
        "/api/v1/auth/register", json={"email": f"{a_number()[1:]}@example.com", "password": PASSWORD}
    )
    me = registered.json()
    phone = a_number()
    code = await request_code(auth, phone)
    response = await auth.post(
        "/api/v1/auth/phone/link", json={"phone": phone, "code": code}, headers=bearer(me)
    )
    assert response.status_code == 200, response.text
    assert response.json()["merged_from"] is None
    assert await phone_identities(auth) == [(me["user"]["id"], phone)]


async def test_linking_needs_a_signed_in_user_and_the_right_code(auth) -> None:
    phone = a_number()
    code = await request_code(auth, phone)
    anonymous = await auth.post("/api/v1/auth/phone/link", json={"phone": phone, "code": code})
    assert anonymous.status_code == 401
    me = (
        await auth.post(
            "/api/v1/auth/register", json={"email": f"{a_number()[1:]}@example.com", "password": PASSWORD}
        )
    ).json()
    wrong = f"{(int(code) + 1) % 10**6:06d}"
    response = await auth.post(
        "/api/v1/auth/phone/link", json={"phone": phone, "code": wrong}, headers=bearer(me)
    )
    assert response.status_code == 400
    assert await phone_identities(auth) == []


async def test_the_last_way_in_cannot_be_unlinked(auth) -> None:
    tokens = await sign_in(auth, a_number())
    response = await auth.delete("/api/v1/auth/phone/unlink", headers=bearer(tokens))
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "last_identity"
