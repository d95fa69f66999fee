"""The end of a user's data, as auth sees it.

``user.erasure_requested`` → the account, its identities and sessions are deleted, with the published
outbox events naming it (``user.registered``, ``user.merged``), and auth's own part is confirmed.
``<service>.user_erased`` → that service's confirmation. Once every service that keeps per-user data
has confirmed, ``user.erased`` is published. Progress is kept under the user's pseudonym, so it names
nobody; confirmations may arrive before the request itself, and redeliveries change nothing.
"""

from __future__ import annotations

from spendsense_auth.domain.commands import GetErasure, ListIncompleteErasures
from spendsense_auth.domain.erasure import ErasureProgress
from spendsense_auth.handlers.unit_of_work import AuthUnitOfWork
from spendsense_shared.erasure import pseudonym
from spendsense_shared.logging import get_logger
from spendsense_shared.messaging.catalog import (
    ErasureConfirmed,
    EventData,
    UserErased,
    UserErasureRequested,
    new_event,
)
from spendsense_shared.messaging.envelope import EventEnvelope

log = get_logger(__name__)


async def erase_user(envelope: EventEnvelope, data: EventData, uow: AuthUnitOfWork) -> None:
    """Handler for ``user.erasure_requested`` (the consumer has entered ``uow`` and commits after it)."""
    if not isinstance(data, UserErasureRequested):
        raise TypeError(envelope.type)
    sessions = await uow.sessions.delete_user(data.user_id)
    existed = await uow.users.delete(data.user_id)
    await uow.forget_published(data.user_id)
    progress = await _progress(uow, pseudonym(data.user_id))
    await _record(envelope, uow, progress.requested(data.requested_at).confirm("auth", envelope.occurred_at))
    log.info("user_erased", user=data.user_id, existed=existed, sessions=sessions)


async def record_confirmation(envelope: EventEnvelope, data: EventData, uow: AuthUnitOfWork) -> None:
    """Handler for every ``<service>.user_erased``."""
    if not isinstance(data, ErasureConfirmed):
        raise TypeError(envelope.type)
    progress = await _progress(uow, data.subject)
    await _record(envelope, uow, progress.confirm(envelope.producer, data.erased_at))


async def _progress(uow: AuthUnitOfWork, subject: str) -> ErasureProgress:
    found = await uow.erasures.get(subject, for_update=True)
    return found or ErasureProgress(subject, requested_at=None)


async def _record(envelope: EventEnvelope, uow: AuthUnitOfWork, progress: ErasureProgress) -> None:
    """Save ``progress``; the confirmation that completes it publishes ``user.erased`` (once)."""
    if progress.complete and progress.completed_at is None:
        progress = progress.finished(max(progress.confirmed.values()))
        assert progress.completed_at is not None
        erased = UserErased(
            subject=progress.subject, requested_at=progress.requested_at, completed_at=progress.completed_at
        )
        uow.publish(new_event(erased, causation_id=envelope.id))
        log.info("erasure_complete", subject=progress.subject)
    await uow.erasures.save(progress)


async def get_erasure(query: GetErasure, uow: AuthUnitOfWork) -> ErasureProgress | None:
    async with uow:
        return await uow.erasures.get(pseudonym(query.user_id))


async def incomplete_erasures(query: ListIncompleteErasures, uow: AuthUnitOfWork) -> list[ErasureProgress]:
    async with uow:
        return await uow.erasures.incomplete(query.limit)
