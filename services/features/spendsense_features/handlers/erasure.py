"""Use case: the user asked to be forgotten (``user.erasure_requested``) → everything the features service
keeps of them goes: signals, current personas, the whole persona history, the snapshot pointer, the
published outbox events that mention them, and their analysis reports in the data bucket: their line
of every batch object of details (``features/details/…``, :func:`blank_line_of`: overwritten by spaces,
so the other users' claims on the object stay valid) and any older object under
``features/users/{user}/``. The consent projection keeps only a tombstone keyed by a one-way hash of the
id (:mod:`spendsense_shared.erasure`), so a late ``consent.granted`` cannot bring the user back, and with no
current consent a late ``upload.ingested`` or a re-score analyzes nothing of theirs.

Then ``features.user_erased`` is published, naming only the pseudonym, for auth's erasure progress. A
redelivery (or a second request) finds nothing left to delete; its confirmation repeats the first.
"""

from __future__ import annotations

from collections.abc import Callable, Collection

import orjson

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
from spendsense_shared.messaging.claim_check import blank_out
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
    lines = 0
    for key, report_user_ids in sorted((await uow.details_objects.held_for(user_id)).items()):
        lines += await blank_out(store, key, blank_line_of(report_user_ids))
    await uow.details_objects.erase_user(user_id)
    objects = await store.delete_prefix(user_prefix("features", user_id))
    confirmed = FeaturesUserErased(subject=pseudonym(user_id), erased_at=envelope.occurred_at)
    uow.publish(new_event(confirmed, causation_id=envelope.id))  # names nobody: auth tracks the progress
    log.info("user_erased", user=user_id, objects=objects, lines=lines, events=events)


def blank_line_of(report_user_ids: Collection[str]) -> Callable[[bytes], bool]:
    """Whether a line of a details object is the ``PersonaDetails`` of one of ``report_user_ids``."""

    def is_theirs(line: bytes) -> bool:
        details = orjson.loads(line)
        return isinstance(details, dict) and details.get("report", {}).get("user_id") in report_user_ids

    return is_theirs
