"""Use case: what an operator reads of one user — the latest signals per window, the persona history
(newest first, capped) and the user's recommendations in the review queue with their states and
decisions. Only while the user's consent is current."""

from __future__ import annotations

from spendsense_operator.domain.commands import GetUser
from spendsense_operator.domain.model import STATUSES, ConsentRequired, ReviewFilter, UserNotFound
from spendsense_operator.domain.users import PERSONA_HISTORY_MAX, USER_RECOMMENDATIONS_MAX, UserDetail
from spendsense_operator.handlers.unit_of_work import OperatorUnitOfWork


async def get_user(query: GetUser, uow: OperatorUnitOfWork) -> UserDetail:
    """Raises UserNotFound (erased, or the operator knows nothing of the user) or ConsentRequired."""
    user_id = query.user_id
    async with uow:
        if await uow.consent.is_erased(user_id):
            raise UserNotFound(user_id)
        if not await uow.consent.is_granted(user_id):
            raise ConsentRequired([user_id])
        signals = await uow.personas.signals(user_id)
        personas = await uow.personas.history(user_id, PERSONA_HISTORY_MAX + 1)
        items = await uow.queue.for_user(user_id, USER_RECOMMENDATIONS_MAX + 1)
        counts = await uow.queue.counts(ReviewFilter(user_id=user_id))
    detail = UserDetail(
        user_id=user_id,
        signals=signals,
        personas=personas[:PERSONA_HISTORY_MAX],
        more_personas=len(personas) > PERSONA_HISTORY_MAX,
        recommendations=items[:USER_RECOMMENDATIONS_MAX],
        more_recommendations=len(items) > USER_RECOMMENDATIONS_MAX,
        counts={s: counts.get(s, 0) for s in STATUSES},
    )
    if detail.knows_nothing:
        raise UserNotFound(user_id)
    return detail
