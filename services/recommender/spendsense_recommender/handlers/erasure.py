"""Use case: the user asked to be forgotten (``user.erasure_requested``) → everything the recommender keeps
of them goes: recommendations, decision traces (their whole hash chain), feedback, the published outbox
events that mention them and their review items in the data bucket: their line of every batch object of
review items (``recommender/reviews/…``, :func:`blank_line_of`: overwritten by spaces, so the other
users' claims on the object stay valid) and any older object under ``recommender/users/{user}/``.
The consent projection keeps only a tombstone keyed by a one-way hash of the id
(:mod:`spendsense_shared.erasure`), so a late ``consent.granted`` cannot bring the user back, and with no
current consent a late ``persona.assigned`` produces nothing.

Then ``recommender.user_erased`` is published for auth's erasure progress. It names only the pseudonym
(:func:`spendsense_shared.erasure.pseudonym`) — in its data, and no user id in its envelope — so it is
not one of the events that mention the user: ``forget_published`` (now, or in a later erasure) never
deletes it, and it outlives the user without naming them. A redelivery (or a second request) finds
nothing left to delete; its confirmation repeats the first.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Collection

from spendsense_recommender.handlers.unit_of_work import RecommenderUnitOfWork
from spendsense_shared.blobs import BlobStore
from spendsense_shared.erasure import pseudonym, user_prefix
from spendsense_shared.logging import get_logger
from spendsense_shared.messaging.catalog import (
    EventData,
    RecommenderUserErased,
    UserErasureRequested,
    new_event,
)
from spendsense_shared.messaging.claim_check import blank_out
from spendsense_shared.messaging.envelope import EventEnvelope

log = get_logger(__name__)


async def erase_user(
    envelope: EventEnvelope, data: EventData, uow: RecommenderUnitOfWork, *, store: BlobStore
) -> None:
    """Handler for ``user.erasure_requested`` (the consumer has entered ``uow`` and commits after it)."""
    if not isinstance(data, UserErasureRequested):
        raise TypeError(envelope.type)
    user_id = data.user_id
    await uow.consent.erase(user_id, envelope.occurred_at)
    await uow.recommendations.erase_user(user_id)
    events = await uow.forget_published(user_id)
    lines = 0
    for key, line_user_ids in sorted((await uow.review_objects.held_for(user_id)).items()):
        lines += await blank_out(store, key, blank_line_of(line_user_ids))
    await uow.review_objects.erase_user(user_id)
    objects = await store.delete_prefix(user_prefix("recommender", user_id))
    # After forget_published, and naming nobody: the confirmation is never one of the events it deletes.
    confirmed = RecommenderUserErased(subject=pseudonym(user_id), erased_at=envelope.occurred_at)
    uow.publish(new_event(confirmed, user_id=None, causation_id=envelope.id))
    log.info("user_erased", user=user_id, objects=objects, lines=lines, events=events)


def blank_line_of(user_ids: Collection[str]) -> Callable[[bytes], bool]:
    """Whether a line of a review object holds the review items of one of ``user_ids``."""

    def is_theirs(line: bytes) -> bool:
        items = json.loads(line)
        return isinstance(items, dict) and items.get("user_id") in user_ids

    return is_theirs
