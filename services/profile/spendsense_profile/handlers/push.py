"""Use case: tell a user's devices that reviewed recommendations are waiting (``recommendations.published``).

One push per reachable device of the user, only while the user's consent is current, through the
:class:`PushNotifier` port (Amazon SNS mobile push in ``adapters/push.py``, an in-memory fake in the unit
tests). A device's endpoint is created at its first push and stored with it. The message names nobody
and holds no amount (:func:`~spendsense_profile.domain.profile.recommendations_to_review`).

Failures: an endpoint found disabled or deleted (the app was uninstalled, the token expired or was
refused) does not fail the event: the device is marked disabled, logged, and the others still get their
push. A platform without an application, credentials or the permission to use them is logged and
skipped (configuration: retrying cannot help). Anything else (throttling, SNS unavailable) raises, so
the consumer retries the event; the transaction rolls back, and a retry may push again to devices that
already got it (at least once).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Protocol

from spendsense_profile.domain.profile import PushNotification, PushPlatform, recommendations_to_review
from spendsense_profile.handlers.unit_of_work import ProfileUnitOfWork
from spendsense_shared.logging import get_logger
from spendsense_shared.messaging.catalog import EventData, RecommendationsPublished
from spendsense_shared.messaging.envelope import EventEnvelope

log = get_logger(__name__)


class PushEndpointGone(Exception):
    """The device cannot be reached any more: its endpoint is disabled or deleted, or its token was
    refused. The message is the reason (an SNS error code), never the token."""


class PushNotConfigured(Exception):
    """The device's platform has no platform application and no credentials to create one, or the process
    may not use push applications (a missing permission)."""


class PushNotifier(Protocol):
    """Mobile push (the port; ``adapters.push.SnsPushNotifier`` implements it)."""

    async def create_endpoint(self, platform: PushPlatform, token: str) -> str:
        """The (enabled) endpoint of the device token, created unless it exists; its ARN. Raises
        :class:`PushEndpointGone` when the token is refused, :class:`PushNotConfigured`."""
        ...

    async def send(self, endpoint_arn: str, notification: PushNotification) -> None:
        """Push to one endpoint. Raises :class:`PushEndpointGone` when it is disabled or deleted; any
        other error is worth retrying."""
        ...

    async def delete_endpoint(self, endpoint_arn: str) -> None:
        """Delete the endpoint (done when it does not exist)."""
        ...


async def notify_recommendations_published(
    envelope: EventEnvelope, data: EventData, uow: ProfileUnitOfWork, *, push: PushNotifier
) -> None:
    """Handler for ``recommendations.published`` (the consumer has entered ``uow`` and commits after it)."""
    if not isinstance(data, RecommendationsPublished):
        raise TypeError(envelope.type)
    user_id = data.user_id
    count = len(set(data.recommendation_ids))
    if count == 0:
        return
    if await uow.consents.current(user_id) is None:
        log.info("push_skipped", user=user_id, reason="no_current_consent")
        return
    devices = [d for d in await uow.push_devices.for_user(user_id) if d.reachable]
    notification = recommendations_to_review(count)
    sent, disabled, unconfigured = 0, 0, 0
    for device in devices:
        try:
            endpoint = device.endpoint_arn
            if endpoint is None:
                endpoint = await push.create_endpoint(device.platform, device.token)
                await uow.push_devices.set_endpoint(device.token, endpoint)
            await push.send(endpoint, notification)
            sent += 1
        except PushEndpointGone as gone:
            await uow.push_devices.disable(device.token, datetime.now(UTC))
            disabled += 1
            log.warning("push_device_disabled", user=user_id, platform=device.platform, reason=str(gone))
        except PushNotConfigured:
            unconfigured += 1
            log.warning("push_not_configured", user=user_id, platform=device.platform)
    log.info(
        "push_sent",
        user=user_id,
        recommendations=count,
        devices=len(devices),
        sent=sent,
        disabled=disabled,
        not_configured=unconfigured,
    )
