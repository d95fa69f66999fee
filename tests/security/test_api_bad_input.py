"""Finding 3 of the security review: input that used to answer 500 answers a precise 4xx.

* hand-made pagination cursors (missing keys, bad or zone-less dates, wrong types, numbers beyond the
  database's range, NUL) on recommendations, mobile recommendations, traces and persona history: 422
  ``invalid_cursor`` naming the key;
* ``%00`` in a path (the gateway's client cannot even build such a URL): 400; in a query parameter: 422;
* a NUL character in a stored text field (feedback comment, ``recommendation_id``, consent
  ``policy_version``): 422 naming the field;
* upload fields longer than their column, or holding NUL: the upload fails ``invalid_upload`` with every
  field's path, nothing stored.

Real PostgreSQL, Redis and S3 emulator; the gateway case through real HTTP servers.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import String

from spendsense_features.bootstrap import SERVICE as FEATURES
from spendsense_profile.adapters import orm as profile_orm
from spendsense_profile.bootstrap import SERVICE as PROFILE
from spendsense_profile.bootstrap import upload_jobs
from spendsense_profile.domain.ingest import stored_text
from spendsense_recommender.bootstrap import SERVICE as RECOMMENDER
from spendsense_shared.aws import Aws
from spendsense_shared.gateway.app import GatewaySettings, create_gateway
from spendsense_shared.messaging.topology import build_topology
from spendsense_shared.testing.fakes import load_beside

support = load_beside(__file__, "security_support.py", "spendsense_security_support")

NOW = "2026-01-02T03:04:05+00:00"
APPROVED = {"t": NOW, "r": 0, "i": "rec-1"}
HISTORY = {"t": NOW, "w": "30d"}
BAD_APPROVED: list[Any] = [
    {},
    {"t": NOW, "r": 0},  # a key missing
    {**APPROVED, "x": 1},  # a key too many
    {**APPROVED, "t": "2026-13-45T00:00:00+00:00"},  # no such date
    {**APPROVED, "t": "2026-01-02T03:04:05"},  # no time zone: not comparable with the stored times
    {**APPROVED, "t": 1700000000},
    {**APPROVED, "r": "0"},
    {**APPROVED, "r": 1.5},
    {**APPROVED, "r": True},
    {**APPROVED, "r": 10**30},  # beyond bigint
    {**APPROVED, "i": None},
    {**APPROVED, "i": ["rec-1"]},
    {**APPROVED, "i": "rec\x00"},
    {**APPROVED, "i": "r" * 5000},
    [],
    "rec-1",
    None,
]
BAD_SEQ: list[Any] = [{}, {"s": "1"}, {"s": 1.5}, {"s": 2**70}, {"s": None}, {"s": 1, "t": NOW}, [1]]
BAD_HISTORY: list[Any] = [
    {},
    {"t": NOW},
    {**HISTORY, "t": "yesterday"},
    {**HISTORY, "t": "2026-01-02"},
    {**HISTORY, "w": 30},
    {**HISTORY, "w": "30d\x00"},
]


def assert_invalid_cursor(response: httpx.Response) -> None:
    assert response.status_code == 422, response.text
    error = response.json()["error"]
    assert error["code"] == "invalid_cursor"
    assert error["details"]
    assert all(d["field"].startswith("cursor") for d in error["details"])


@pytest.fixture
async def recommender(service_client):
    client = await service_client(RECOMMENDER)
    await support.grant_consent(client, RECOMMENDER, "u1")
    return client


@pytest.mark.parametrize(
    "path", ["/api/v1/recommendations/u1", "/api/v1/mobile/recommendations/u1"], ids=["list", "mobile"]
)
async def test_hand_made_recommendation_cursors_are_422_invalid_cursor(recommender, path):
    me = recommender.as_("u1")
    issued_shape = await recommender.get(path, params={"cursor": support.cursor(APPROVED)}, headers=me)
    assert issued_shape.status_code == 200, issued_shape.text  # a cursor as the API issues it still works
    for position in BAD_APPROVED:
        response = await recommender.get(path, params={"cursor": support.cursor(position)}, headers=me)
        assert_invalid_cursor(response)
    not_base64 = await recommender.get(path, params={"cursor": "%%%not-a-cursor"}, headers=me)
    assert_invalid_cursor(not_base64)


async def test_hand_made_trace_cursors_are_422_invalid_cursor(recommender):
    operator = recommender.as_("op", "operator")
    path = "/api/v1/recommendations/u1/traces"
    ok = await recommender.get(path, params={"cursor": support.cursor({"s": 1})}, headers=operator)
    assert ok.status_code == 200, ok.text
    for position in BAD_SEQ:
        response = await recommender.get(path, params={"cursor": support.cursor(position)}, headers=operator)
        assert_invalid_cursor(response)


async def test_hand_made_persona_history_cursors_are_422_invalid_cursor(service_client):
    features = await service_client(FEATURES)
    await support.grant_consent(features, FEATURES, "u1")
    for position in BAD_HISTORY:
        response = await features.get(
            "/api/v1/profile/u1/persona",
            params={"cursor": support.cursor(position)},
            headers=features.as_("u1"),
        )
        assert_invalid_cursor(response)


async def test_nul_in_a_stored_text_field_is_422_naming_it(recommender, service_client):
    me = recommender.as_("u1")
    feedback = "/api/v1/recommendations/u1/feedback"
    cases = [
        ({"recommendation_id": "rec-1", "kind": "helpful", "comment": "fine\x00"}, "comment"),
        ({"recommendation_id": "rec\x00", "kind": "helpful"}, "recommendation_id"),
    ]
    for body, field in cases:
        response = await recommender.post(feedback, json=body, headers=me)
        assert response.status_code == 422, response.text
        assert [d["field"] for d in response.json()["error"]["details"]] == [field]

    profile = await service_client(PROFILE)
    consent = await profile.post(
        "/api/v1/consent", json={"user_id": "u1", "policy_version": "v1\x00"}, headers=profile.as_("u1")
    )
    assert consent.status_code == 422, consent.text
    assert [d["field"] for d in consent.json()["error"]["details"]] == ["policy_version"]
    mobile = await profile.post(
        "/api/v1/mobile/consent/u1", json={"policy_version": "\x00"}, headers=profile.as_("u1")
    )
    assert mobile.status_code == 422, mobile.text


async def test_a_user_id_longer_than_its_column_in_a_path_is_422_naming_it(recommender, service_client):
    """Found by the fuzz: as an admin (past the access check), ``POST /mobile/consent/{129 characters}``
    built a consent request from the path and answered 500."""
    too_long = "u" * 129
    profile = await service_client(PROFILE)
    features = await service_client(FEATURES)
    cases = [
        (profile, "post", f"/api/v1/mobile/consent/{too_long}", {}),
        (profile, "get", f"/api/v1/mobile/profile/{too_long}", None),
        (profile, "delete", f"/api/v1/consent/{too_long}", None),
        (features, "get", f"/api/v1/profile/{too_long}/signals", None),
        (recommender, "get", f"/api/v1/recommendations/{too_long}", None),
        (
            recommender,
            "post",
            f"/api/v1/recommendations/{too_long}/feedback",
            {"recommendation_id": "r", "kind": "helpful"},
        ),
    ]
    for client, method, path, body in cases:
        kwargs: dict[str, Any] = {"headers": client.as_("admin-1", "admin")}
        if body is not None:
            kwargs["json"] = body
        response = await getattr(client, method)(path, **kwargs)
        # A consent check that runs first may refuse it (403 consent_required); never a 5xx.
        assert response.status_code in (403, 422), (path, response.text)
        if response.status_code == 422:
            assert [d["field"] for d in response.json()["error"]["details"]] == ["user_id"], path
    granted = await profile.post(
        f"/api/v1/mobile/consent/{too_long}", json={}, headers=profile.as_("admin-1", "admin")
    )
    assert granted.status_code == 422, granted.text
    fits = await profile.post(
        f"/api/v1/mobile/consent/{'u' * 128}", json={}, headers=profile.as_("admin-1", "admin")
    )
    assert fits.status_code != 422, fits.text  # the limit is the column's, not less


async def test_nul_in_a_path_is_400_and_in_a_query_parameter_422(recommender, service_client):
    me = recommender.as_("u1")
    in_path = await recommender.get("/api/v1/recommendations/u1%00", headers=me)
    assert in_path.status_code == 400, in_path.text
    assert in_path.json()["error"]["code"] == "bad_request"
    in_query = await recommender.get("/api/v1/recommendations/u1", params={"limit": "5\x00"}, headers=me)
    assert in_query.status_code == 422, in_query.text
    assert [d["field"] for d in in_query.json()["error"]["details"]] == ["limit"]

    # Through the gateway, in front of the real service: the gateway refuses it before building a URL.
    async with support.serving(recommender.app) as upstream:
        gateway = create_gateway(
            GatewaySettings(upstreams={"recommender": upstream}), web_dist=Path("/nonexistent")
        )
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=gateway), base_url="http://gw") as gw:
            for path in (
                "/api/v1/recommendations/u1%00",
                "/api/v1/%00",
                "/api/v1/recommendations/%00/traces",
            ):
                response = await gw.get(path, headers=me)
                assert response.status_code == 400, (path, response.text)
                assert response.json()["error"]["code"] == "bad_request"
            still_fine = await gw.get("/api/v1/recommendations/u1", headers=me)
            assert still_fine.status_code == 200, still_fine.text


# -- uploads -----------------------------------------------------------------------------------------------


def test_the_upload_checks_know_the_database_column_sizes():
    """The limits the parser checks are the columns' own (adapters/orm.py)."""
    tables = {
        "accounts": (profile_orm.accounts, stored_text.ACCOUNT_TEXT),
        "transactions": (profile_orm.transactions, stored_text.TRANSACTION_TEXT),
        "credit": (profile_orm.credit_liabilities, stored_text.CREDIT_TEXT),
    }
    for name, (table, checked) in tables.items():
        for column, _, limit in checked:
            kind = table.c[column].type
            assert isinstance(kind, String), (name, column)
            assert kind.length == limit, (name, column)
        sized = {c.name for c in table.c if isinstance(c.type, String) and c.type.length}
        unchecked = sized - {c for c, _, _ in checked} - {"user_id", "upload_id", "type", "holder_category"}
        unchecked -= {"iso_currency_code", "payment_channel", "category_detailed"}  # chosen from known values
        assert not unchecked, (name, unchecked)
    assert profile_orm.accounts.c.user_id.type.length == stored_text.USER_ID_MAX


def plaid_user(**account: Any) -> dict[str, Any]:
    base_account = {
        "account_id": "acc-1",
        "name": "Checking",
        "type": "depository",
        "subtype": "checking",
        "mask": "0001",
        "balances": {"current": 100.0, "iso_currency_code": "USD"},
    }
    return {
        "user_id": "u1",
        "accounts": [{**base_account, **account}],
        "transactions": [
            {
                "transaction_id": "t" * 129,
                "account_id": account.get("account_id", "acc-1"),
                "date": "2026-01-01",
                "amount": 12.5,
                "iso_currency_code": "USD",
                "name": "Coffee",
                "payment_channel": "in store",
                "personal_finance_category": {"primary": "P" * 65},
                "pending": False,
            }
        ],
    }


async def test_an_upload_with_fields_the_database_cannot_hold_fails_invalid_upload(
    service_client, settings_for, isolation_id
):
    bucket = build_topology(isolation_id).buckets["data"]
    async with Aws(settings_for("profile")).client("s3") as s3:
        await s3.create_bucket(Bucket=bucket)
    profile = await service_client(PROFILE)
    jobs = upload_jobs(profile.platform, PROFILE.bootstrap(profile.platform))
    me = profile.as_("u1")
    granted = await profile.post("/api/v1/consent", json={"user_id": "u1"}, headers=me)
    assert granted.status_code == 201, granted.text

    body = plaid_user(account_id="a" * 129, mask="123456789", subtype="s" * 65, name="Check\x00ing")
    response = await profile.post("/api/v1/uploads", json=body, headers=me)
    assert response.status_code == 202, response.text
    assert await jobs.run_pending() == 1

    status = await profile.get(f"/api/v1/uploads/{response.json()['upload_id']}", headers=me)
    assert status.status_code == 200, status.text
    record = status.json()
    assert record["status"] == "failed", record
    assert record["error"]["code"] == "invalid_upload"
    fields = {d["field"] for d in record["error"]["details"]}
    assert {
        "accounts[0].account_id",
        "accounts[0].mask",
        "accounts[0].subtype",
        "accounts[0].name",
        "transactions[0].transaction_id",
        "transactions[0].account_id",
        "transactions[0].personal_finance_category.primary",
    } <= fields, fields
