"""Use case: the user asked to be forgotten (``user.erasure_requested``) → the user's review items, their
persona history and signals, and the published outbox events that mention them are deleted, and so is
anything under ``operator/users/{user}/`` in the data bucket (the operator writes nothing there today; the
prefix is cleared so it stays true).

The audit log is the operators' record: its entries of the user keep who did what, when, to which
recommendation and why, but their user id is replaced by a one-way hash
(:func:`spendsense_shared.erasure.pseudonym`), so the entries of one erased user still belong together
and nobody can tell whose they were; an override's before/after text, which cites the user's own
figures (a card's last four digits, balances), is replaced by ``{"erased": true}``. The consent
projection keeps only a tombstone under the same hash, so a late ``consent.granted`` cannot bring the
user back and, with no current consent, a late ``recommendations.generated`` or ``persona.assigned``
stores nothing.

Then ``operator.user_erased`` is published for auth's erasure progress: it names only the pseudonym
(``subject``) and its envelope has no user id, so nothing of it mentions the user and ``forget_published``
(which deletes only *published* events naming the user) never takes it. A second request finds nothing
left to delete; its confirmation repeats the first.
"""

from __future__ import annotations

from datetime import UTC, datetime

from spendsense_operator.handlers.unit_of_work import OperatorUnitOfWork
from spendsense_shared.blobs import BlobStore
from spendsense_shared.erasure import pseudonym, user_prefix
from spendsense_shared.logging import get_logger
from spendsense_shared.messaging.catalog import (
    EventData,
    OperatorUserErased,
    UserErasureRequested,
    new_event,
)
from spendsense_shared.messaging.envelope import EventEnvelope

log = get_logger(__name__)


async def erase_user(
    envelope: EventEnvelope, data: EventData, uow: OperatorUnitOfWork, *, store: BlobStore
) -> None:
    """Handler for ``user.erasure_requested`` (the consumer has entered ``uow`` and commits after it)."""
    if not isinstance(data, UserErasureRequested):
        raise TypeError(envelope.type)
    user_id = data.user_id
    await uow.consent.erase(user_id, envelope.occurred_at)
    items = await uow.queue.erase_user(user_id)
    personas = await uow.personas.erase_user(user_id)
    audited = await uow.audit.pseudonymize_user(user_id)
    events = await uow.forget_published(user_id)
    objects = await store.delete_prefix(user_prefix("operator", user_id))
    confirmed = OperatorUserErased(subject=pseudonym(user_id), erased_at=datetime.now(UTC))
    uow.publish(new_event(confirmed, causation_id=envelope.id))  # names nobody: auth tracks the progress
    log.info(
        "user_erased",
        user=user_id,
        items=items,
        personas=personas,
        audited=audited,
        objects=objects,
        events=events,
    )
