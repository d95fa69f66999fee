"""Use cases of the review API: decide on items (approve, reject, flag), list the queue, read the
audit log. Every decision updates the queue, writes an audit entry and publishes
``recommendation.reviewed`` through the outbox, in one transaction: all or nothing."""

from __future__ import annotations

from datetime import UTC, datetime

from spendsense_operator.domain.commands import Decide, ListAudit, ListReview
from spendsense_operator.domain.model import (
    ACTION_OF,
    STATUSES,
    AuditEntry,
    AuditPage,
    ConsentRequired,
    DecisionResult,
    RecommendationsNotFound,
    ReviewPage,
    sort_position,
)
from spendsense_operator.handlers.unit_of_work import OperatorUnitOfWork
from spendsense_shared.messaging.catalog import RecommendationReviewed, new_event


async def decide(cmd: Decide, uow: OperatorUnitOfWork) -> DecisionResult:
    """Raises RecommendationsNotFound (naming the unknown ids) or ConsentRequired (naming the users);
    then nothing has changed."""
    async with uow:
        if cmd.user_id is not None:
            items = await uow.queue.open_for_user(cmd.user_id)
        else:
            ids = list(dict.fromkeys(cmd.recommendation_ids))
            items = await uow.queue.get_many(ids)
            found = {i.recommendation_id for i in items}
            missing = [i for i in ids if i not in found]
            if missing:
                raise RecommendationsNotFound(missing)
            order = {rid: n for n, rid in enumerate(ids)}
            items.sort(key=lambda i: order[i.recommendation_id])
        users = sorted({i.user_id for i in items})
        refused = sorted(set(users) - await uow.consent.granted(users))
        if refused:
            raise ConsentRequired(refused)
        now = datetime.now(UTC)
        entries: list[AuditEntry] = []
        for item in items:
            await uow.queue.decide(item.recommendation_id, cmd.decision, cmd.operator_id, cmd.reason, now)
            entries.append(
                AuditEntry(
                    operator_id=cmd.operator_id,
                    action=ACTION_OF[cmd.decision],
                    recommendation_id=item.recommendation_id,
                    user_id=item.user_id,
                    before_status=item.status,
                    after_status=cmd.decision,
                    reason=cmd.reason,
                    at=now,
                )
            )
            reviewed = RecommendationReviewed(
                recommendation_id=item.recommendation_id,
                user_id=item.user_id,
                decision=cmd.decision,
                operator_id=cmd.operator_id,
                reason=cmd.reason,
            )
            uow.publish(new_event(reviewed, user_id=item.user_id))
        await uow.audit.add(entries)
        decided = await uow.queue.get_many([i.recommendation_id for i in items]) if items else []
        await uow.commit()
    order = {i.recommendation_id: n for n, i in enumerate(items)}
    return DecisionResult(cmd.decision, sorted(decided, key=lambda i: order[i.recommendation_id]))


async def list_review(query: ListReview, uow: OperatorUnitOfWork) -> ReviewPage:
    async with uow:
        rows = await uow.queue.page(query.filter, query.sort, query.limit + 1, query.after)
        counts = await uow.queue.counts(query.filter)
    items = rows[: query.limit]
    more = len(rows) > query.limit
    return ReviewPage(
        items=items,
        next_after=sort_position(items[-1], query.sort) if more and items else None,
        counts={s: counts.get(s, 0) for s in STATUSES},
    )


async def list_audit(query: ListAudit, uow: OperatorUnitOfWork) -> AuditPage:
    async with uow:
        limit = None if query.limit is None else query.limit + 1
        rows = await uow.audit.page(query.filter, limit, query.after)
    if query.limit is None or len(rows) <= query.limit:
        return AuditPage(rows, None)
    items = rows[: query.limit]
    return AuditPage(items, items[-1].seq)
