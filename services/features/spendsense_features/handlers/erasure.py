"""Use case: the user asked to be forgotten (``user.erasure_requested``) → everything the features service
keeps of them goes: signals, current personas, the whole persona history, the snapshot pointer, the
published outbox events that mention them, and their analysis reports under ``features/users/{user}/``
in the data bucket. The consent projection keeps only a tombstone keyed by a one-way hash of the id
(:mod:`spendsense_shared.erasure`), so a late ``consent.granted`` cannot bring the user back, and with no
current consent a late ``upload.ingested`` or a re-score analyzes nothing of theirs.

Then ``features.user_erased`` is published, naming only the pseudonym, for auth's erasure progress. A
redelivery (or a second request) finds nothing left to delete; its confirmation repeats the first.
"""

from __future__ import annotations

from spendsense_features.handlers.unit_of_work import FeaturesUnitOfWork
from spendsense_shared.blobs import BlobStore
from spendsense_shared.erasure import pseudonym, user_prefix
from spendsense_shared.logging import get_logger
from spendsense_shared.messaging.catalog import (
    EventData,
    FeaturesUserErased,
    UserErasureRequested,
    new_event,
)
from spendsense_shared.messaging.envelope import EventEnvelope

log = get_logger(__name__)


async def erase_user(
    envelope: EventEnvelope, data: EventData, uow: FeaturesUnitOfWork, *, store: BlobStore
) -> None:
    """Handler for ``user.erasure_requested`` (the consumer has entered ``uow`` and commits after it)."""
    if not isinstance(data, UserErasureRequested):
        raise TypeError(envelope.type)
    user_id = data.user_id
    await uow.consent.erase(user_id, envelope.occurred_at)
    await uow.analyses.erase_user(user_id)
    await uow.snapshots.erase_user(user_id)
    events = await uow.forget_published(user_id)
    objects = await store.delete_prefix(user_prefix("features", user_id))
    confirmed = FeaturesUserErased(subject=pseudonym(user_id), erased_at=envelope.occurred_at)
    uow.publish(new_event(confirmed, causation_id=envelope.id))  # names nobody: auth tracks the progress
    log.info("user_erased", user=user_id, objects=objects, events=events)
