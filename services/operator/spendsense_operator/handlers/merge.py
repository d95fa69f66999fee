"""``user.merged`` in the operator service: the consent projection follows the merge, and the source
account's review items, persona history and signals become the target's (per window the newer signals
stay; a second delivery finds nothing of the source)."""

from __future__ import annotations

from spendsense_operator.handlers.unit_of_work import OperatorUnitOfWork
from spendsense_shared.consent import merge_consent
from spendsense_shared.messaging.catalog import EventData, UserMerged
from spendsense_shared.messaging.envelope import EventEnvelope


async def merge_users(envelope: EventEnvelope, data: EventData, uow: OperatorUnitOfWork) -> None:
    if not isinstance(data, UserMerged):
        raise TypeError(f"merge_users handles user.merged, not {type(data).__name__}")
    await merge_consent(envelope, data, uow)
    if data.source_user_id == data.target_user_id:
        return
    await uow.queue.merge_user(data.source_user_id, data.target_user_id)
    await uow.personas.merge_user(data.source_user_id, data.target_user_id)
