"""Findings 8 and 3 (the token ``sub`` part) of the security review: validly signed tokens with bad claims.

Signed with the key every service trusts, so only the claim checks can stop them:

* ``exp`` (or ``iat``, ``nbf``) as a numeric string, or a fraction, was accepted: refused (401);
* an ``exp`` in the year 5000 was accepted: a token may live no longer than the auth service issues
  access tokens (``access_token_ttl_s``, plus the verifier's leeway), counted from ``iat`` and from now;
* a ``sub`` over 128 characters answered 500 (it reached a 128-character column): 401 now;
* a token issued in the future is refused.

Each is sent to the real profile app (real PostgreSQL) on routes that store the token's subject.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import pytest

from spendsense_profile.bootstrap import SERVICE as PROFILE
from spendsense_shared.jwk import SigningKey
from spendsense_shared.testing.plugin import AUDIENCE, ISSUER

DEVICE = {"token": "c0ffee00" * 8, "platform": "android"}
YEAR_5000 = 95_617_584_000


def token(signing_key: SigningKey, subject: str = "u-token", **claims: Any) -> str:
    return signing_key.sign(subject, roles=["user"], issuer=ISSUER, audience=AUDIENCE, extra=claims)


def now() -> int:
    return int(time.time())


# Built when the test runs (``t`` is the current time), not when the module is imported.
BAD_CLAIMS: dict[str, Callable[[int], dict[str, Any]]] = {
    "exp as a numeric string": lambda t: {"exp": str(t + 600)},
    "iat as a numeric string": lambda t: {"iat": str(t)},
    "nbf as a numeric string": lambda t: {"nbf": str(t)},
    "exp as a fraction": lambda t: {"exp": t + 600.5},
    "exp in the year 5000": lambda t: {"exp": YEAR_5000},
    "a lifetime of two days": lambda t: {"iat": t, "exp": t + 2 * 86400},
    "issued in the future": lambda t: {"iat": t + 3600, "nbf": t, "exp": t + 3700},
}


@pytest.fixture
async def profile(service_client):
    return await service_client(PROFILE)


@pytest.mark.parametrize("claims", list(BAD_CLAIMS.values()), ids=list(BAD_CLAIMS))
async def test_a_signed_token_with_bad_time_claims_is_refused(profile, signing_key, claims):
    headers = {"Authorization": f"Bearer {token(signing_key, **claims(now()))}"}
    answer = await profile.post("/api/v1/mobile/push/register", json=DEVICE, headers=headers)
    assert answer.status_code == 401, answer.text
    assert answer.json()["error"]["code"] == "unauthorized"
    assert answer.headers["www-authenticate"] == "Bearer"


async def test_a_subject_over_128_characters_is_refused_not_a_server_error(profile, signing_key):
    for path, body in (("/api/v1/mobile/push/register", DEVICE), ("/api/v1/consent", None)):
        headers = {"Authorization": f"Bearer {token(signing_key, 'u' * 129)}"}
        answer = await profile.post(path, json=body or {"user_id": "u" * 129}, headers=headers)
        assert answer.status_code == 401, (path, answer.text)
        assert "sub" in answer.json()["error"]["message"]


async def test_well_formed_tokens_still_pass(profile, signing_key):
    cases = (("u" * 128, {}, "a"), ("u-token", {"exp": now() + 3600}, "b"))  # the longest subject; a full TTL
    for subject, claims, device in cases:
        headers = {"Authorization": f"Bearer {token(signing_key, subject, **claims)}"}
        body = {**DEVICE, "token": device * 64}
        answer = await profile.post("/api/v1/mobile/push/register", json=body, headers=headers)
        assert answer.status_code == 201, answer.text
