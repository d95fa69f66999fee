"""Push notifications through the AWS emulator's SNS (moto's server) and real PostgreSQL.

Devices register through the API; ``recommendations.published`` reaches the wired handler (as the
consumer delivers it, and once through the real bus); the SNS adapter creates the platform applications
and the endpoints. What the emulator accepted is read back from ``GET <aws>/moto-api/data.json``: every
``PlatformEndpoint`` it holds, with its ``arn``, ``token``, ``attributes`` and the ``messages`` published to
it (by message id). The emulator is shared by every test of the session: tokens are unique per test.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from botocore.exceptions import ClientError, EndpointConnectionError
from sqlalchemy import select, update

from spendsense_profile.adapters.orm import messaging, push_devices
from spendsense_profile.adapters.push import SnsPushNotifier, platform_applications
from spendsense_profile.adapters.unit_of_work import SqlProfileUnitOfWork
from spendsense_profile.bootstrap import SERVICE
from spendsense_profile.handlers.push import notify_recommendations_published
from spendsense_profile.settings import ProfileSettings
from spendsense_shared.aws import Aws
from spendsense_shared.embedded.servers import free_port
from spendsense_shared.erasure import pseudonym
from spendsense_shared.messaging.catalog import RecommendationsPublished, new_event
from spendsense_shared.messaging.envelope import EventEnvelope
from spendsense_shared.messaging.provision import topic_arn
from spendsense_shared.service import Wiring
from spendsense_shared.testing.bus import consumer_for, eventually


def a_token() -> str:
    return uuid.uuid4().hex + uuid.uuid4().hex  # 64 hex digits, like an APNs token; unique per test


async def emulator_endpoints(aws_endpoint: str) -> list[dict[str, Any]]:
    """Every platform endpoint the emulator holds (deleted ones too: its model log keeps them)."""
    async with httpx.AsyncClient(base_url=aws_endpoint, timeout=10) as client:
        response = await client.get("/moto-api/data.json")
        response.raise_for_status()
    return list(response.json().get("sns", {}).get("PlatformEndpoint", []))


async def pushes(aws_endpoint: str, token: str) -> list[str]:
    """The raw messages SNS accepted for the device token, oldest first."""
    return [
        message
        for endpoint in await emulator_endpoints(aws_endpoint)
        if endpoint.get("token") == token
        for message in endpoint.get("messages", {}).values()
    ]


class Stack:
    """The profile API on this test's schema, its wiring, and the emulator's address."""

    def __init__(self, client: Any):
        self.client = client
        self.platform = client.platform
        self.settings = self.platform.settings
        self.aws_endpoint = str(self.settings.aws_endpoint_url)
        self.wiring: Wiring = SERVICE.bootstrap(self.platform)

    async def consent(self, user_id: str) -> None:
        response = await self.client.post(
            "/api/v1/consent", json={"user_id": user_id}, headers=self.client.as_(user_id)
        )
        assert response.status_code == 201, response.text

    async def register(self, user_id: str, token: str, platform: str) -> None:
        response = await self.client.post(
            "/api/v1/mobile/push/register",
            json={"token": token, "platform": platform},
            headers=self.client.as_(user_id),
        )
        assert response.status_code == 201, response.text

    async def publish(self, user_id: str, *ids: str, handler: Any = None) -> None:
        """Deliver ``recommendations.published`` to the wired handler in one unit of work, as the consumer."""
        data = RecommendationsPublished(user_id=user_id, recommendation_ids=list(ids))
        envelope = new_event(data, user_id=user_id)
        async with self.platform.database.uow_factory(SqlProfileUnitOfWork)() as uow:
            assert await uow.mark_processed(envelope)
            await (handler or self.wiring.event_handlers[envelope.type])(envelope, data, uow)
            await uow.commit()

    async def devices(self) -> dict[str, Any]:
        async with self.platform.database.engine.connect() as conn:
            return {r.token: r for r in await conn.execute(select(push_devices))}

    async def outbox(self) -> list[EventEnvelope]:
        outbox = messaging.outbox
        async with self.platform.database.engine.connect() as conn:
            rows = await conn.execute(select(outbox.c.payload).order_by(outbox.c.seq))
            return [EventEnvelope.model_validate(r.payload) for r in rows]

    def sns(self) -> Any:
        return Aws(self.settings).client("sns")


@pytest.fixture
async def stack(service_client) -> Stack:
    return Stack(await service_client(SERVICE))


async def test_every_device_of_a_consented_user_gets_the_push_through_sns(stack):
    phone, tablet, someone_else = a_token(), a_token(), a_token()
    await stack.consent("u1")
    await stack.register("u1", phone, "ios")
    await stack.register("u1", tablet, "android")
    await stack.register("u2", someone_else, "ios")

    await stack.publish("u1", "rec-a", "rec-b", "rec-c")

    text = "You have 3 new recommendations to review in SpendSense"
    for token in (phone, tablet):
        [raw] = await pushes(stack.aws_endpoint, token)
        assert "u1" not in raw  # nobody named
        assert "rec-a" not in raw
        assert "$" not in raw  # no amount
        message = json.loads(raw)
        assert message["default"] == text
        assert json.loads(message["APNS"])["aps"]["alert"]["body"] == text
        assert json.loads(message["GCM"])["notification"]["body"] == text
    assert await pushes(stack.aws_endpoint, someone_else) == []

    devices = await stack.devices()
    env = stack.settings.env
    assert f":endpoint/APNS/spendsense-{env}-push-ios/" in devices[phone].endpoint_arn
    assert f":endpoint/GCM/spendsense-{env}-push-android/" in devices[tablet].endpoint_arn
    assert devices[phone].disabled_at is None
    async with stack.sns() as sns:
        apps = [
            a["PlatformApplicationArn"]
            for a in (await sns.list_platform_applications())["PlatformApplications"]
        ]
    assert any(a.endswith(f":app/APNS/spendsense-{env}-push-ios") for a in apps)
    assert any(a.endswith(f":app/GCM/spendsense-{env}-push-android") for a in apps)

    # The next event uses the stored endpoints; a fresh process finds the applications by name.
    await stack.publish(
        "u1", "rec-d", handler=SERVICE.bootstrap(stack.platform).event_handlers["recommendations.published"]
    )
    assert (await stack.devices())[phone].endpoint_arn == devices[phone].endpoint_arn
    assert len(await pushes(stack.aws_endpoint, phone)) == 2
    assert json.loads((await pushes(stack.aws_endpoint, tablet))[-1])["default"] == (
        "You have 1 new recommendation to review in SpendSense"
    )
    async with stack.sns() as sns:
        again = [
            a["PlatformApplicationArn"]
            for a in (await sns.list_platform_applications())["PlatformApplications"]
        ]
    assert sorted(again) == sorted(apps)


async def test_no_consent_no_push_and_no_endpoint(stack):
    token = a_token()
    await stack.register("u1", token, "ios")

    await stack.publish("u1", "rec-a")

    assert (await stack.devices())[token].endpoint_arn is None
    assert not [e for e in await emulator_endpoints(stack.aws_endpoint) if e.get("token") == token]


async def test_disabled_and_deleted_endpoints_disable_their_devices_without_failing_the_event(stack):
    disabled, deleted, fine = a_token(), a_token(), a_token()
    await stack.consent("u1")
    await stack.register("u1", disabled, "android")
    await stack.register("u1", deleted, "ios")
    await stack.register("u1", fine, "ios")
    await stack.publish("u1", "rec-a")
    arns = {t: d.endpoint_arn for t, d in (await stack.devices()).items()}
    async with stack.sns() as sns:  # what APNs/FCM feedback (or someone) does to endpoints
        await sns.set_endpoint_attributes(EndpointArn=arns[disabled], Attributes={"Enabled": "false"})
        await sns.delete_endpoint(EndpointArn=arns[deleted])

    await stack.publish("u1", "rec-b", "rec-c")  # does not raise

    devices = await stack.devices()
    assert devices[disabled].disabled_at is not None
    assert devices[deleted].disabled_at is not None
    assert devices[fine].disabled_at is None
    assert len(await pushes(stack.aws_endpoint, fine)) == 2
    assert len(await pushes(stack.aws_endpoint, disabled)) == 1

    # The app registers its token again: the endpoint is enabled again at the next push.
    await stack.register("u1", disabled, "android")
    assert (await stack.devices())[disabled].endpoint_arn is None
    await stack.publish("u1", "rec-d")

    devices = await stack.devices()
    assert devices[disabled].endpoint_arn == arns[disabled]  # the token's endpoint, not a new one
    assert devices[disabled].disabled_at is None
    async with stack.sns() as sns:
        attributes = (await sns.get_endpoint_attributes(EndpointArn=arns[disabled]))["Attributes"]
    assert attributes["Enabled"].lower() == "true"
    assert len(await pushes(stack.aws_endpoint, disabled)) == 2
    assert len(await pushes(stack.aws_endpoint, fine)) == 3
    assert devices[deleted].disabled_at is not None  # not registered again: still not tried


async def test_an_unreachable_sns_raises_so_the_consumer_retries_and_nothing_is_kept(stack):
    token = a_token()
    await stack.consent("u1")
    await stack.register("u1", token, "ios")
    dead = ProfileSettings(
        **{**stack.settings.model_dump(), "aws_endpoint_url": f"http://127.0.0.1:{free_port()}"}
    )
    unreachable = SnsPushNotifier(Aws(dead), dead.env, platform_applications(dead))

    async def handler(envelope: Any, data: Any, uow: Any) -> None:
        await notify_recommendations_published(envelope, data, uow, push=unreachable)

    with pytest.raises(EndpointConnectionError):
        await stack.publish("u1", "rec-a", handler=handler)

    assert (await stack.devices())[token].endpoint_arn is None
    assert (await stack.devices())[token].disabled_at is None
    await stack.publish("u1", "rec-a")  # the retry, once SNS answers
    assert len(await pushes(stack.aws_endpoint, token)) == 1


async def test_erasure_deletes_the_endpoints_and_devices_and_confirms_with_the_pseudonym_only(stack):
    async with Aws(stack.settings).client("s3") as s3:  # the erasure empties the user's prefix in it
        await s3.create_bucket(Bucket=stack.platform.topology.buckets["data"])
    mine, other = a_token(), a_token()
    await stack.consent("u1")
    await stack.register("u1", mine, "ios")
    await stack.register("u2", other, "android")
    await stack.consent("u2")
    await stack.publish("u1", "rec-a")
    await stack.publish("u2", "rec-b")
    arns = {t: d.endpoint_arn for t, d in (await stack.devices()).items()}

    erased = await stack.client.delete("/api/v1/consent/u1?erase=true", headers=stack.client.as_("u1"))
    assert erased.status_code == 202, erased.text

    async with stack.sns() as sns:
        with pytest.raises(ClientError) as gone:
            await sns.get_endpoint_attributes(EndpointArn=arns[mine])
        assert gone.value.response["Error"]["Code"] == "NotFound"
        await sns.get_endpoint_attributes(EndpointArn=arns[other])  # the other user's stays
    assert set(await stack.devices()) == {other}
    events = await stack.outbox()
    assert [e.type for e in events[-3:]] == [
        "consent.revoked",
        "user.erasure_requested",
        "profile.user_erased",
    ]
    confirmation = events[-1]
    assert confirmation.user_id is None
    assert confirmation.data["subject"] == pseudonym("u1")
    assert "u1" not in confirmation.model_dump_json().replace(pseudonym("u1"), "")

    # Published, the confirmation survives a second erasure's "forget the events naming the user".
    outbox = messaging.outbox
    async with stack.platform.database.engine.begin() as conn:
        await conn.execute(update(outbox).values(published_at=outbox.c.created_at))
    again = await stack.client.delete("/api/v1/consent/u1?erase=true", headers=stack.client.as_("u1"))
    assert again.status_code == 202, again.text
    events = await stack.outbox()
    assert confirmation.id in [e.id for e in events]
    assert [e.type for e in events].count("profile.user_erased") == 2
    assert not [e for e in events if e.user_id == "u1" and e.type != "user.erasure_requested"]


async def test_through_the_real_bus_the_recommenders_event_reaches_the_device(stack, topology):
    """recommender's topic → SNS subscription (filter by type) → profile's queue → consumer → push."""
    token = a_token()
    await stack.consent("u1")
    await stack.register("u1", token, "android")
    event = new_event(
        RecommendationsPublished(user_id="u1", recommendation_ids=["rec-a", "rec-b"]), user_id="u1"
    )
    aws = Aws(stack.settings)
    async with aws.client("sns") as sns, aws.client("sqs") as sqs:
        consumer = await consumer_for(
            stack.settings,
            stack.platform.database,
            sqs,
            stack.wiring.event_handlers,
            stack.wiring.unit_of_work,
        )
        task = asyncio.create_task(consumer.run())
        try:
            await sns.publish(
                TopicArn=await topic_arn(aws, topology.topics["recommender"]),
                Message=event.to_json(),
                MessageAttributes={
                    "type": {"DataType": "String", "StringValue": event.type},
                    "version": {"DataType": "Number", "StringValue": str(event.version)},
                },
            )
            delivered = await eventually(lambda: pushes(stack.aws_endpoint, token), timeout=20)
        finally:
            consumer.stop()
            await task
    assert [json.loads(m)["default"] for m in delivered] == [
        "You have 2 new recommendations to review in SpendSense"
    ]


async def test_registering_again_keeps_an_enabled_devices_endpoint_on_postgresql(stack):
    """The upsert: same platform and enabled, the endpoint stays; another user cannot take the token of a
    reachable device (409, nothing changes); disabled, or on another platform, the endpoint is dropped,
    and the device is enabled again."""
    token = a_token()
    await stack.register("u1", token, "ios")
    async with stack.platform.database.uow_factory(SqlProfileUnitOfWork)() as uow:
        await uow.push_devices.set_endpoint(token, "arn:aws:sns:us-east-1:1:endpoint/APNS/app/e1")
        await uow.commit()

    await stack.register("u1", token, "ios")
    taken = await stack.client.post(
        "/api/v1/mobile/push/register",
        json={"token": token, "platform": "ios"},
        headers=stack.client.as_("u2"),
    )
    assert taken.status_code == 409  # no proof of possession: the token stays u1's
    device = (await stack.devices())[token]
    assert (device.user_id, device.endpoint_arn) == ("u1", "arn:aws:sns:us-east-1:1:endpoint/APNS/app/e1")

    await stack.register("u1", token, "android")
    assert (await stack.devices())[token].endpoint_arn is None

    async with stack.platform.database.uow_factory(SqlProfileUnitOfWork)() as uow:
        await uow.push_devices.set_endpoint(token, "arn:aws:sns:us-east-1:1:endpoint/GCM/app/e2")
        await uow.push_devices.disable(token, datetime.now(UTC))
        [found] = await uow.push_devices.for_user("u1")
        await uow.commit()
    assert not found.reachable
    assert found.endpoint_arn == "arn:aws:sns:us-east-1:1:endpoint/GCM/app/e2"

    await stack.register("u2", token, "android")  # unreachable now (uninstalled): it may move
    device = (await stack.devices())[token]
    assert device.user_id == "u2"
    assert (device.endpoint_arn, device.disabled_at) == (None, None)
