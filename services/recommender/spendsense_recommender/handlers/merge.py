"""Use case: two accounts of one person were merged (``user.merged``) → the recommendations, decision
traces and feedback of the account merged away become the remaining account's, so do the lines of review
objects held for it (an erasure of the remaining account blanks them), and so does its consent
projection row where the remaining account's consent is not current
(:func:`spendsense_shared.consent.merged_consent`).

The traces keep their hash chain: each stays in the chain it was sealed in (its ``chain_id``), so no stored
hash is rewritten and the tamper evidence holds; listing the user's traces verifies each chain, and the
remaining account's new traces continue its own chain. Its dismissals now include the merged-away
account's, so what either dismissed is not offered again. Applying the merge twice changes nothing.
"""

from __future__ import annotations

from spendsense_recommender.handlers.unit_of_work import RecommenderUnitOfWork
from spendsense_shared.messaging.catalog import EventData, UserMerged
from spendsense_shared.messaging.envelope import EventEnvelope


async def merge_users(envelope: EventEnvelope, data: EventData, uow: RecommenderUnitOfWork) -> None:
    """Handler for ``user.merged`` (the consumer has entered ``uow`` and commits after it)."""
    if not isinstance(data, UserMerged):
        raise TypeError(envelope.type)
    source, target = data.source_user_id, data.target_user_id
    if source == target:
        return
    await uow.recommendations.merge_user(source, target)
    await uow.review_objects.merge_user(source, target)
    await uow.consent.merge(source, target)
