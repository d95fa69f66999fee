"""Finding 5 of the security review: rate limits, security headers, and redirects that named internal
addresses.

* Past its limit a client gets 429 ``rate_limited`` with ``Retry-After``: per access token on requests
  that carry one, per client address on the others (behind a trusted proxy: the X-Forwarded-For client).
  A forged token spends only its own budget, never its victim's. Probes are never limited.
* Every answer carries nosniff, DENY / ``frame-ancestors 'none'``, ``Referrer-Policy``; JSON is
  ``no-store`` unless the route says otherwise (ETag routes); HSTS when the request came over https.
* A path with a trailing slash is 404, not a redirect to the service's own (internal) address.

The recommender's real app on real PostgreSQL and Redis (the limits are counted in Redis).
"""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from spendsense_recommender.bootstrap import SERVICE as RECOMMENDER
from spendsense_shared.gateway.app import GatewaySettings, create_gateway, public_location
from spendsense_shared.testing.fakes import load_beside

support = load_beside(__file__, "security_support.py", "spendsense_security_support")

LIST = "/api/v1/recommendations/u1"


@pytest.fixture
async def limited(service_client):
    client = await service_client(
        RECOMMENDER, rate_limit_per_user=3, rate_limit_per_ip=2, rate_limit_window_s=30
    )
    await support.grant_consent(client, RECOMMENDER, "u1")
    return client


def assert_rate_limited(response: httpx.Response) -> None:
    assert response.status_code == 429, response.text
    assert response.json()["error"]["code"] == "rate_limited"
    assert 1 <= int(response.headers["retry-after"]) <= 30


async def test_a_signed_in_client_past_its_limit_gets_429_with_retry_after(limited):
    me = limited.as_("u1")
    statuses = [(await limited.get(LIST, headers=me)).status_code for _ in range(3)]
    assert statuses == [200, 200, 200]
    assert_rate_limited(await limited.get(LIST, headers=me))

    someone_else = limited.as_("u2")  # another user's budget is their own
    assert (await limited.get("/api/v1/recommendations/u2", headers=someone_else)).status_code != 429


async def test_a_forged_token_spends_only_its_own_budget(limited):
    victim = limited.as_("u1")
    forged = {"Authorization": "Bearer " + limited.mint("u1").rsplit(".", 1)[0] + ".forged-signature"}
    attempts = [(await limited.get(LIST, headers=forged)).status_code for _ in range(5)]
    assert attempts[:3] == [401, 401, 401]
    assert attempts[3:] == [429, 429]
    assert (await limited.get(LIST, headers=victim)).status_code == 200


async def test_requests_without_a_token_are_limited_per_client_address(limited):
    statuses = [(await limited.get(LIST)).status_code for _ in range(2)]
    assert statuses == [401, 401]
    assert_rate_limited(await limited.get(LIST))
    for probe in ("/health", "/ready", "/metrics"):  # a load balancer always learns the truth
        assert (await limited.get(probe)).status_code != 429, probe


async def test_behind_a_trusted_proxy_each_forwarded_client_has_its_own_budget(service_client):
    client = await service_client(RECOMMENDER, rate_limit_per_ip=1, rate_limit_window_s=30, trust_proxy=True)
    first = await client.get(LIST, headers={"X-Forwarded-For": "203.0.113.1"})
    assert first.status_code == 401
    assert_rate_limited(await client.get(LIST, headers={"X-Forwarded-For": "203.0.113.1, 10.0.0.1"}))
    other = await client.get(LIST, headers={"X-Forwarded-For": "203.0.113.2"})
    assert other.status_code == 401


async def test_every_answer_carries_the_security_headers(limited):
    me = limited.as_("u1")
    answers = {
        "json": await limited.get("/api/v1/recommendations/u1/traces", headers=limited.as_("op", "operator")),
        "etag route": await limited.get(LIST, headers=me),
        "error": await limited.get("/api/v1/nothing-here"),
    }
    for name, response in answers.items():
        headers = response.headers
        assert headers["x-content-type-options"] == "nosniff", name
        assert headers["x-frame-options"] == "DENY", name
        assert headers["referrer-policy"] == "no-referrer", name
        assert "frame-ancestors 'none'" in headers["content-security-policy"], name
        assert "strict-transport-security" not in headers, name  # plain http: HSTS would be ignored
    assert answers["json"].headers["cache-control"] == "no-store"
    assert answers["error"].headers["cache-control"] == "no-store"
    assert answers["etag route"].headers["cache-control"] == "private, no-cache"  # the route's own
    assert len(answers["json"].headers.get_list("x-content-type-options")) == 1


async def test_hsts_when_the_trusted_proxy_says_https(service_client):
    client = await service_client(RECOMMENDER, trust_proxy=True)
    over_https = await client.get("/health", headers={"X-Forwarded-Proto": "https"})
    assert over_https.headers["strict-transport-security"].startswith("max-age=")
    untrusted = await service_client(RECOMMENDER)
    claimed = await untrusted.get("/health", headers={"X-Forwarded-Proto": "https"})
    assert "strict-transport-security" not in claimed.headers


async def test_a_trailing_slash_is_404_and_names_no_internal_address(limited):
    me = limited.as_("u1")
    direct = await limited.get(LIST + "/", headers=me)
    assert direct.status_code == 404, direct.text
    assert "location" not in direct.headers

    async with support.serving(limited.app) as upstream:
        gateway = create_gateway(
            GatewaySettings(upstreams={"recommender": upstream}), web_dist=Path("/nonexistent")
        )
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=gateway), base_url="http://gw") as gw:
            through = await gw.get(LIST + "/", headers=me)
            assert through.status_code == 404, through.text
            assert "location" not in through.headers
            assert upstream.split("//")[1] not in through.text
            assert through.headers["x-content-type-options"] == "nosniff"  # once, not once per hop
            assert len(through.headers.get_list("x-content-type-options")) == 1


def test_the_gateway_makes_a_redirect_to_a_service_relative():
    bases = ["http://127.0.0.1:8004", "http://10.0.0.7:8000/"]
    assert (
        public_location("http://127.0.0.1:8004/api/v1/recommendations/u1", bases)
        == "/api/v1/recommendations/u1"
    )
    assert public_location("http://10.0.0.7:8000/api/v1/x?y=1", bases) == "/api/v1/x?y=1"
    assert public_location("https://accounts.example.com/o/oauth2/auth?x=1", bases) == (
        "https://accounts.example.com/o/oauth2/auth?x=1"
    )
    assert public_location("/relative", bases) == "/relative"
