"""Use case: two accounts of one person were merged (``user.merged``) → what the features service keeps of
the account merged away becomes the remaining account's: its snapshot pointer, signals and current
personas where the remaining account has none of its own (the remaining account's own win), its whole
persona history, the lines of details objects held for it (an erasure of the remaining account blanks
them), and its consent projection row (:func:`spendsense_shared.consent.merged_consent`).

Nothing is published and nothing re-analyzed: the remaining account's next upload or a re-score does that.
Applying the merge twice changes nothing (the second finds nothing of the source account).
"""

from __future__ import annotations

from spendsense_features.handlers.unit_of_work import FeaturesUnitOfWork
from spendsense_shared.messaging.catalog import EventData, UserMerged
from spendsense_shared.messaging.envelope import EventEnvelope


async def merge_users(envelope: EventEnvelope, data: EventData, uow: FeaturesUnitOfWork) -> None:
    """Handler for ``user.merged`` (the consumer has entered ``uow`` and commits after it)."""
    if not isinstance(data, UserMerged):
        raise TypeError(envelope.type)
    source, target = data.source_user_id, data.target_user_id
    if source == target:
        return
    await uow.snapshots.merge_user(source, target)
    await uow.analyses.merge_user(source, target)
    await uow.details_objects.merge_user(source, target)
    await uow.consent.merge(source, target)
