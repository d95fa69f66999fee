"""``recommendations.published`` → one push per reachable device of a user whose consent is current,
through the push port (here its in-memory fake; ``tests/integration/test_push_notifications.py`` runs the
SNS adapter on the AWS emulator). Endpoints are created at a device's first push and kept; a disabled
or deleted endpoint disables its device without failing the event; a transient error raises."""

from __future__ import annotations

import json

import pytest
from unit.fakes import FakeProfileUnitOfWork, FakePushNotifier, TransientPushError

from spendsense_profile.domain.commands import GrantConsent, RegisterPushDevice, RevokeConsent
from spendsense_profile.domain.profile import PushNotification, recommendations_to_review
from spendsense_profile.handlers.consent import grant_consent, revoke_consent
from spendsense_profile.handlers.profile import register_push_device
from spendsense_profile.handlers.push import notify_recommendations_published
from spendsense_shared.messaging.catalog import RecommendationsPublished, UserRegistered, new_event

TWO = "You have 2 new recommendations to review in SpendSense"


async def publish(uow: FakeProfileUnitOfWork, push: FakePushNotifier, user_id: str, *ids: str) -> None:
    """Deliver the event to the handler in one unit of work, as the consumer does."""
    data = RecommendationsPublished(user_id=user_id, recommendation_ids=list(ids))
    envelope = new_event(data, user_id=user_id)
    async with uow:
        assert await uow.mark_processed(envelope)
        await notify_recommendations_published(envelope, data, uow, push=push)
        await uow.commit()


async def device(uow: FakeProfileUnitOfWork, user_id: str, token: str, platform: str = "ios") -> None:
    await register_push_device(RegisterPushDevice(user_id, token, platform), uow)  # type: ignore[arg-type]


def bodies(push: FakePushNotifier, token: str) -> list[str]:
    return [n.body for n in push.received(token)]


async def test_every_device_of_a_consented_user_gets_one_push_without_personal_data(uow, push):
    await grant_consent(GrantConsent("u1"), uow)
    await device(uow, "u1", "tok-phone", "ios")
    await device(uow, "u1", "tok-tablet", "android")
    await device(uow, "u2", "tok-other", "ios")

    await publish(uow, push, "u1", "rec-1", "rec-2", "rec-2")  # a repeated id counts once

    assert bodies(push, "tok-phone") == [TWO]
    assert bodies(push, "tok-tablet") == [TWO]
    assert push.received("tok-other") == []
    [sent] = push.received("tok-phone")
    assert sent == PushNotification("SpendSense", TWO, "recommendations_published", 2)
    assert "u1" not in json.dumps(sent.__dict__)
    assert "rec-1" not in json.dumps(sent.__dict__)
    stored = {d.token: d.endpoint_arn for d in await uow.push_devices.for_user("u1")}
    assert stored == {"tok-phone": push.arn_of("tok-phone"), "tok-tablet": push.arn_of("tok-tablet")}

    await publish(uow, push, "u1", "rec-3")  # the stored endpoints are used: none is created again

    assert len(push.endpoints) == 2
    assert bodies(push, "tok-phone") == [TWO, "You have 1 new recommendation to review in SpendSense"]


@pytest.mark.parametrize("consent", ["never", "revoked"])
async def test_no_push_without_a_current_consent(uow, push, consent):
    await device(uow, "u1", "tok-phone")
    if consent == "revoked":
        await grant_consent(GrantConsent("u1"), uow)
        await revoke_consent(RevokeConsent("u1"), uow)

    await publish(uow, push, "u1", "rec-1")

    assert push.endpoints == {}
    assert push.sent == {}


async def test_nothing_to_announce_or_nobody_to_tell_sends_nothing(uow, push):
    await grant_consent(GrantConsent("u1"), uow)
    await publish(uow, push, "u1", "rec-1")  # no device
    await device(uow, "u1", "tok-phone")
    await publish(uow, push, "u1")  # no recommendation
    assert push.sent == {}


@pytest.mark.parametrize("failure", ["disabled", "deleted"])
async def test_a_disabled_or_deleted_endpoint_disables_its_device_and_the_others_still_get_the_push(
    uow, push, failure
):
    await grant_consent(GrantConsent("u1"), uow)
    await device(uow, "u1", "tok-old", "android")
    await device(uow, "u1", "tok-new", "ios")
    await publish(uow, push, "u1", "rec-1")
    old = push.arn_of("tok-old")
    assert old is not None
    if failure == "disabled":  # e.g. FCM reported the token unregistered
        push.disabled.add(old)
    else:
        await push.delete_endpoint(old)

    await publish(uow, push, "u1", "rec-2", "rec-3")  # does not raise: the event is done

    devices = {d.token: d for d in await uow.push_devices.for_user("u1")}
    assert devices["tok-old"].disabled_at is not None
    assert devices["tok-new"].disabled_at is None
    assert bodies(push, "tok-new")[-1] == TWO
    assert uow.processed  # the event was recorded as handled

    sends = sum(len(v) for v in push.sent.values())
    await publish(uow, push, "u1", "rec-4")  # a disabled device is not tried again
    assert sum(len(v) for v in push.sent.values()) == sends + 1


async def test_registering_a_disabled_device_again_makes_it_reachable(uow, push):
    await grant_consent(GrantConsent("u1"), uow)
    await device(uow, "u1", "tok-phone")
    await publish(uow, push, "u1", "rec-1")
    endpoint = push.arn_of("tok-phone")
    assert endpoint is not None
    push.disabled.add(endpoint)
    await publish(uow, push, "u1", "rec-2")
    assert not (await uow.push_devices.for_user("u1"))[0].reachable

    await device(uow, "u1", "tok-phone")  # the app registered its token again
    [again] = await uow.push_devices.for_user("u1")
    assert again.reachable
    assert again.endpoint_arn is None  # re-created (and re-enabled) at the next push
    await publish(uow, push, "u1", "rec-3")

    assert push.arn_of("tok-phone") == endpoint
    assert len(push.received("tok-phone")) == 2
    assert (await uow.push_devices.for_user("u1"))[0].endpoint_arn == endpoint


async def test_a_refused_token_disables_its_device(uow, push):
    await grant_consent(GrantConsent("u1"), uow)
    await device(uow, "u1", "tok-bad")
    await device(uow, "u1", "tok-good")
    push.refused.add("tok-bad")

    await publish(uow, push, "u1", "rec-1")

    devices = {d.token: d for d in await uow.push_devices.for_user("u1")}
    assert devices["tok-bad"].disabled_at is not None
    assert devices["tok-bad"].endpoint_arn is None
    assert len(push.received("tok-good")) == 1


async def test_a_platform_without_an_application_is_skipped_and_its_devices_stay_enabled(uow, push):
    await grant_consent(GrantConsent("u1"), uow)
    await device(uow, "u1", "tok-ios", "ios")
    await device(uow, "u1", "tok-android", "android")
    push.unconfigured.add("android")

    await publish(uow, push, "u1", "rec-1")

    assert len(push.received("tok-ios")) == 1
    assert all(d.reachable for d in await uow.push_devices.for_user("u1"))


async def test_a_transient_error_raises_so_the_consumer_retries_and_nothing_is_kept(uow, push):
    await grant_consent(GrantConsent("u1"), uow)
    await device(uow, "u1", "tok-phone")
    before = uow._state()
    push.failing = True

    with pytest.raises(TransientPushError):
        await publish(uow, push, "u1", "rec-1")

    assert uow._state() == before  # rolled back: the endpoint is stored when the retry succeeds
    push.failing = False
    await publish(uow, push, "u1", "rec-1")
    assert len(push.received("tok-phone")) == 1


async def test_the_handler_refuses_another_event_type(uow, push):
    data = UserRegistered(user_id="u1", roles=["user"], registered_via="password")
    with pytest.raises(TypeError):
        await notify_recommendations_published(new_event(data), data, uow, push=push)


def test_the_message_counts_and_says_nothing_else():
    assert recommendations_to_review(1).body == "You have 1 new recommendation to review in SpendSense"
    assert recommendations_to_review(5).body == "You have 5 new recommendations to review in SpendSense"
    with pytest.raises(ValueError, match="at least one"):
        recommendations_to_review(0)
