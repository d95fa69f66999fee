"""Finding 7 of the security review: two consent and ownership edges.

* Operators still read a revoked user's upload progress. Now, like every other route on a user's data,
  an operator reading a user's own upload after that user revoked consent gets 403 ``consent_required``
  (the user still reads their own); of a batch import, an operator sees only users whose consent is
  current.
* A push token registered by one user could be taken over by another, without proof of possession,
  by registering the same token (notifications then went to the other account). Now a token held by
  another user's reachable device is refused with 409 ``device_token_in_use`` and stays where it was; it
  may move only once a push found the device unreachable (uninstalled, token expired).

Real PostgreSQL and S3 emulator.
"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import select, update

from spendsense_profile.adapters.orm import push_devices
from spendsense_profile.bootstrap import SERVICE as PROFILE
from spendsense_shared.aws import Aws
from spendsense_shared.messaging.topology import build_topology
from spendsense_shared.testing.fakes import load_beside

support = load_beside(__file__, "content_support.py", "spendsense_content_support")
TOKEN = "f00dfeed" * 8


@pytest.fixture
async def profile(service_client, settings_for, isolation_id):
    async with Aws(settings_for("profile")).client("s3") as s3:
        await s3.create_bucket(Bucket=build_topology(isolation_id).buckets["data"])
    return support.ProfileApp(await service_client(PROFILE))


async def test_operators_cannot_read_a_revoked_users_upload_progress(profile):
    await profile.grant("dana")
    upload_id = await profile.upload("dana", users=[support.plaid_user("dana")])
    assert (await profile.read_upload(upload_id, "ops", "operator")).status_code == 200

    await profile.revoke("dana")
    for role in ("operator", "admin"):
        denied = await profile.read_upload(upload_id, "ops", role)
        assert denied.status_code == 403, denied.text
        assert denied.json()["error"]["code"] == "consent_required"
    own = await profile.read_upload(upload_id, "dana", "user")
    assert own.status_code == 200  # their own upload stays readable to them


async def test_of_a_batch_operators_see_only_users_whose_consent_is_current(profile):
    await profile.grant("erin", "frank")
    users = [support.plaid_user(u) for u in ("erin", "frank")]
    batch_id = await profile.upload("ops", "operator", users=users)
    await profile.revoke("frank")

    body = (await profile.read_upload(batch_id, "ops", "operator")).json()
    assert [u["user_id"] for u in body["users"]] == ["erin"]


async def test_a_device_token_of_another_account_is_not_taken_over(profile):
    register = "/api/v1/mobile/push/register"
    device = {"token": TOKEN, "platform": "ios"}
    first = await profile.client.post(register, json=device, headers=profile.as_("owner"))
    assert first.status_code == 201

    taken = await profile.client.post(register, json=device, headers=profile.as_("attacker"))
    assert taken.status_code == 409, taken.text
    error = taken.json()["error"]
    assert error["code"] == "device_token_in_use"
    assert error["details"][0]["field"] == "token"
    again = await profile.client.post(register, json=device, headers=profile.as_("owner"))
    assert again.status_code == 201  # the owner re-registering is fine

    engine = profile.platform.database.engine
    async with engine.connect() as conn:
        holders = (await conn.execute(select(push_devices.c.user_id))).scalars().all()
    assert holders == ["owner"]

    # A push found the device gone (the app was uninstalled): now the token may belong to someone new.
    async with engine.begin() as conn:
        await conn.execute(update(push_devices).values(disabled_at=datetime.now(UTC)))
    moved = await profile.client.post(register, json=device, headers=profile.as_("new-owner"))
    assert moved.status_code == 201
    async with engine.connect() as conn:
        holders = (await conn.execute(select(push_devices.c.user_id))).scalars().all()
    assert holders == ["new-owner"]
