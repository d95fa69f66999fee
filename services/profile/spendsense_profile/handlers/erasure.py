"""Use case: the right to be forgotten, where it starts.

``EraseUser`` revokes the user's current consent (publishing ``consent.revoked``, so every projection
stops work at once), deletes everything the profile holds of them — every consent record, the profile,
their normalized accounts, transactions and liabilities, their push devices and those devices' Amazon SNS
endpoints, uploads of only their data (and their own uploads still waiting to be parsed) and their
membership of shared batch uploads, the published outbox
events naming them — and publishes ``user.erasure_requested``, all in one transaction (the outbox). The
endpoints are deleted before it commits (an SNS failure fails the erasure, and asking again finds the
devices again; deleting an endpoint twice is harmless). The snapshots of batch uploads shared with
others (one object per table for a chunk of users) are rewritten without their rows before it commits (a
failure rolls the erasure back; asking again finds those uploads again). Once it has committed, the
objects of their deleted uploads (``profile/uploads/{upload}/``: received bytes and snapshots) and any
snapshot written per user (``profile/users/{user}/``, as before chunks) are deleted from the data bucket
(after the commit, so a rolled-back erasure loses nothing; asking again deletes what is left). Then,
with nothing of the user left here, ``profile.user_erased`` is published, naming only the pseudonym (no
user id in the envelope either, so no later "forget the published events about the user" step deletes
it), for auth's erasure progress. Every
consumer then erases what it keeps: auth the account, features, recommender and operator their rows and
objects (see their ``handlers/erasure.py``), each confirming with its own ``<service>.user_erased``.

Asking twice is harmless: the second request finds nothing to delete, asks the others again, who find
nothing either, and confirms again.
"""

from __future__ import annotations

from datetime import UTC, datetime

from spendsense_profile.domain import consent as rules
from spendsense_profile.domain.commands import EraseUser
from spendsense_profile.domain.consent import ErasureRequested
from spendsense_profile.handlers.push import PushNotifier
from spendsense_profile.handlers.snapshots import remove_user
from spendsense_profile.handlers.unit_of_work import ProfileUnitOfWork
from spendsense_shared.blobs import BlobStore
from spendsense_shared.erasure import pseudonym
from spendsense_shared.logging import get_logger
from spendsense_shared.messaging.catalog import (
    ConsentRevoked,
    ProfileUserErased,
    UserErasureRequested,
    new_event,
)

log = get_logger(__name__)


def user_objects(user_id: str) -> str:
    """The user's objects in the data bucket, as names under the profile's own prefix (``profile/``)."""
    return f"users/{user_id}/"


async def erase_user(
    cmd: EraseUser, uow: ProfileUnitOfWork, data_bucket: BlobStore, push: PushNotifier
) -> ErasureRequested:
    now = datetime.now(UTC)
    user_id = cmd.user_id
    async with uow:
        current = await uow.consents.current(user_id, for_update=True)
        if current is not None:
            revoked = rules.revoke(current, now)
            await uow.consents.mark_revoked(revoked)
            uow.publish(
                new_event(
                    ConsentRevoked(user_id=user_id, consent_id=revoked.consent_id, revoked_at=now),
                    user_id=user_id,
                )
            )
        erased = await uow.uploads.erase_user(user_id)
        await uow.data.erase_user(user_id)
        endpoints = [d.endpoint_arn for d in await uow.push_devices.for_user(user_id) if d.endpoint_arn]
        for endpoint in endpoints:
            await push.delete_endpoint(endpoint)
        await uow.push_devices.erase_user(user_id)
        await uow.consents.erase_user(user_id)
        events = await uow.forget_published(user_id)
        # Before the commit: a failure rolls the erasure back, and asking again finds these uploads again.
        rewritten = await remove_user(data_bucket, erased.shared_keys, user_id)
        uow.publish(new_event(UserErasureRequested(user_id=user_id, requested_at=now), user_id=user_id))
        await uow.commit()
    objects = await data_bucket.delete_prefix(user_objects(user_id))  # snapshots written per user before
    for prefix in erased.prefixes:  # uploads of only theirs: the bytes as they sent them, the snapshots
        objects += await data_bucket.delete_prefix(prefix)
    async with uow:  # everything is gone here: confirm it, naming nobody (no user id in the envelope)
        uow.publish(new_event(ProfileUserErased(subject=pseudonym(user_id), erased_at=datetime.now(UTC))))
        await uow.commit()
    log.info(
        "user_erasure_requested",
        user=user_id,
        consent_revoked=current is not None,
        objects=objects,
        snapshots_rewritten=rewritten,
        events=events,
        push_endpoints=len(endpoints),
    )
    return ErasureRequested(
        user_id=user_id, requested_at=now, consent_revoked=current is not None, objects_deleted=objects
    )
