"""Use cases of the review API: decide on items (approve, reject, flag; approve in bulk by persona or
kind), override an item's text, list the queue, read the audit log. Every decision updates the queue,
writes an audit entry and publishes ``recommendation.reviewed`` through the outbox, in one transaction:
all or nothing."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from spendsense_operator.domain.commands import (
    ApproveMatching,
    CheckOverride,
    Decide,
    ListAudit,
    ListReview,
    Override,
    OverrideResult,
)
from spendsense_operator.domain.model import (
    ACTION_OF,
    STATUSES,
    AuditEntry,
    AuditPage,
    ConsentRequired,
    Decision,
    DecisionResult,
    QueuedItem,
    RecommendationsNotFound,
    ReviewPage,
    sort_position,
)
from spendsense_operator.domain.override import GuardrailsFailed, OverrideReport, replacement
from spendsense_operator.handlers.unit_of_work import OperatorUnitOfWork
from spendsense_shared.messaging.catalog import RecommendationReviewed, new_event


async def record_decisions(
    uow: OperatorUnitOfWork,
    items: list[QueuedItem],
    decision: Decision,
    operator_id: str,
    reason: str | None,
    *,
    policy: str | None = None,
    causation_id: uuid.UUID | None = None,
) -> None:
    """Inside ``uow``'s transaction: each item decided, audited and announced (the caller has checked
    consent and commits)."""
    now = datetime.now(UTC)
    entries: list[AuditEntry] = []
    for item in items:
        await uow.queue.decide(item.recommendation_id, decision, operator_id, reason, now)
        entries.append(
            AuditEntry(
                operator_id=operator_id,
                action=ACTION_OF[decision],
                recommendation_id=item.recommendation_id,
                user_id=item.user_id,
                before_status=item.status,
                after_status=decision,
                reason=reason,
                at=now,
            )
        )
        reviewed = RecommendationReviewed(
            recommendation_id=item.recommendation_id,
            user_id=item.user_id,
            decision=decision,
            operator_id=operator_id,
            reason=reason,
            policy=policy,
        )
        uow.publish(new_event(reviewed, user_id=item.user_id, causation_id=causation_id))
    await uow.audit.add(entries)


async def _refuse_without_consent(uow: OperatorUnitOfWork, items: list[QueuedItem]) -> None:
    users = sorted({i.user_id for i in items})
    refused = sorted(set(users) - await uow.consent.granted(users))
    if refused:
        raise ConsentRequired(refused)


async def _reread(uow: OperatorUnitOfWork, items: list[QueuedItem]) -> list[QueuedItem]:
    """The items as they are now, in the order given."""
    if not items:
        return []
    now = {i.recommendation_id: i for i in await uow.queue.get_many([i.recommendation_id for i in items])}
    return [now[i.recommendation_id] for i in items]


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
        await _refuse_without_consent(uow, items)
        await record_decisions(uow, items, cmd.decision, cmd.operator_id, cmd.reason)
        decided = await _reread(uow, items)
        await uow.commit()
    return DecisionResult(cmd.decision, decided)


async def approve_matching(cmd: ApproveMatching, uow: OperatorUnitOfWork) -> DecisionResult:
    """Approve up to ``cmd.limit`` open items of this persona and/or kind; users without current consent
    are left out (their items are not even listed to staff)."""
    where = cmd.where.review_filter()
    async with uow:
        items = await uow.queue.open_matching(where, cmd.limit)
        await record_decisions(uow, items, "approved", cmd.operator_id, None)
        decided = await _reread(uow, items)
        remaining = await uow.queue.count_open_matching(where)
        await uow.commit()
    return DecisionResult("approved", decided, remaining)


async def _overridable(uow: OperatorUnitOfWork, recommendation_id: str, *, lock: bool) -> QueuedItem:
    if lock:
        found = await uow.queue.get_many([recommendation_id])
        item = found[0] if found else None
    else:
        item = await uow.queue.find(recommendation_id)
    if item is None:
        raise RecommendationsNotFound([recommendation_id])
    await _refuse_without_consent(uow, [item])
    return item


async def override(cmd: Override, uow: OperatorUnitOfWork) -> OverrideResult:
    async with uow:
        item = await _overridable(uow, cmd.recommendation_id, lock=True)
        text, report = replacement(item, cmd.text, cmd.catalog_item_id)
        if not report.passed:
            raise GuardrailsFailed(report)
        now = datetime.now(UTC)
        await uow.queue.override(item.recommendation_id, text, cmd.operator_id, cmd.reason, now)
        entry = AuditEntry(
            operator_id=cmd.operator_id,
            action="override",
            recommendation_id=item.recommendation_id,
            user_id=item.user_id,
            before_status=item.status,
            after_status="overridden",
            reason=cmd.reason,
            at=now,
            before=item.shown_text(),
            after=text.model_dump(),
        )
        await uow.audit.add([entry])
        reviewed = RecommendationReviewed(
            recommendation_id=item.recommendation_id,
            user_id=item.user_id,
            decision="overridden",
            operator_id=cmd.operator_id,
            reason=cmd.reason,
            override=text,
        )
        uow.publish(new_event(reviewed, user_id=item.user_id))
        [overridden] = await _reread(uow, [item])
        await uow.commit()
    return OverrideResult(overridden, report)


async def check_override(query: CheckOverride, uow: OperatorUnitOfWork) -> OverrideReport:
    async with uow:
        item = await _overridable(uow, query.recommendation_id, lock=False)
    return replacement(item, query.text, query.catalog_item_id)[1]


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
