"""``recommendations.batch_generated`` (a batch; ``recommendations.generated``, one user) → the review
queue: every new item pending, only while the user's consent is current; the items come by claim check
from the data bucket (a batch's as the lines of one object, read once), or inline. The auto-approval
policy (:mod:`spendsense_operator.domain.policy`) approves the new items it covers in the same
transaction."""

from __future__ import annotations

from spendsense_operator.domain.model import QueuedItem, priority_of
from spendsense_operator.domain.policy import (
    POLICY_REASONS,
    AutoApprovalPolicy,
    auto_approves,
    policy_operator,
)
from spendsense_operator.handlers.review import record_decisions
from spendsense_operator.handlers.unit_of_work import OperatorUnitOfWork
from spendsense_shared.blobs import BlobStore
from spendsense_shared.logging import get_logger
from spendsense_shared.messaging.catalog import (
    EventData,
    RecommendationsBatchGenerated,
    RecommendationsGenerated,
)
from spendsense_shared.messaging.claim_check import redeem, redeem_many
from spendsense_shared.messaging.contracts import ReviewItem, ReviewItems
from spendsense_shared.messaging.envelope import EventEnvelope
from spendsense_shared.messaging.errors import PermanentError

log = get_logger(__name__)


def queued(item: ReviewItem, data: RecommendationsGenerated, envelope: EventEnvelope) -> QueuedItem:
    guardrails = item.guardrails.model_dump()
    return QueuedItem(
        recommendation_id=item.id,
        user_id=data.user_id,
        upload_id=data.upload_id,
        persona=item.persona,
        kind=item.kind,
        title=item.title,
        body=item.body,
        rationale=item.rationale,
        disclosure=item.disclosure,
        catalog_item_id=item.catalog_item_id,
        catalog_version=item.catalog_version,
        rank=item.rank,
        guardrails=guardrails,
        generator=item.generator,
        fell_back_to_template=item.fell_back_to_template,
        priority=priority_of(item.kind, guardrails, item.fell_back_to_template),
        created_at=envelope.occurred_at,
        facts=list(item.facts),
        trusted_names=list(item.trusted_names),
        alternatives=list(item.alternatives),
    )


async def enqueue_recommendations(
    envelope: EventEnvelope,
    data: EventData,
    uow: OperatorUnitOfWork,
    *,
    store: BlobStore,
    policy: AutoApprovalPolicy = "off",
) -> None:
    """Handler for ``recommendations.generated``, one user's recommendations as the recommender published
    them before ``recommendations.batch_generated`` (the consumer has entered ``uow`` and commits after
    it). Idempotent: an item already queued (a redelivery, a re-announcement) is left as it is, and the
    policy acts only on the items this event added."""
    assert isinstance(data, RecommendationsGenerated)
    if not await uow.consent.is_granted(data.user_id):
        log.info("review_skipped", reason="consent_required")
        return  # nothing is queued for review without the user's current consent
    if data.items_claim is not None:
        # the claim is redeemed and parsed once, here (a hash mismatch is permanent: dead-lettered)
        items = ReviewItems.model_validate_json(await redeem(store, data.items_claim)).items
    elif data.items is not None:
        items = data.items
    else:
        log.warning("review_skipped", reason="no_review_items")
        return  # an announcement without review items (progress only): nothing to review
    added, approved = await enqueue_items(envelope, [(data, items)], uow, policy=policy)
    log.info("review_queued", items=added, auto_approved=approved, policy=policy)


async def enqueue_batch(
    envelope: EventEnvelope,
    data: EventData,
    uow: OperatorUnitOfWork,
    *,
    store: BlobStore,
    policy: AutoApprovalPolicy = "off",
) -> None:
    """Handler for ``recommendations.batch_generated``: every user's recommendations queued as for
    ``recommendations.generated``, all in the one unit of work, only for the users whose consent is
    current (nothing is read from the bucket for the others). Their review items are redeemed together,
    each object read once (a batch's items share one): a claim that fails its check fails the batch."""
    assert isinstance(data, RecommendationsBatchGenerated)
    each = data.each()
    consented = await uow.consent.granted([g.user_id for g in each])
    if skipped := sum(1 for g in each if g.user_id not in consented):
        log.info("review_skipped", reason="consent_required", users=skipped)
    kept = [g for g in each if g.user_id in consented]
    if without := sum(1 for g in kept if g.items_claim is None):
        log.info("review_skipped", reason="no_review_items", users=without)  # progress only
    claimed = [g for g in kept if g.items_claim is not None]
    bodies = await redeem_many(store, [g.items_claim for g in claimed if g.items_claim is not None])
    announced = []
    for generated, body in zip(claimed, bodies, strict=True):
        review = ReviewItems.model_validate_json(body)
        if review.user_id is not None and review.user_id != generated.user_id:
            raise ForeignReviewItems(f"the claimed review items are of another user than {generated.user_id}")
        announced.append((generated, review.items))
    added, approved = await enqueue_items(envelope, announced, uow, policy=policy)
    log.info("review_queued", users=len(claimed), items=added, auto_approved=approved, policy=policy)


class ForeignReviewItems(PermanentError):
    """A claim's review items name another user: retrying cannot help (dead-lettered)."""


async def enqueue_items(
    envelope: EventEnvelope,
    announced: list[tuple[RecommendationsGenerated, list[ReviewItem]]],
    uow: OperatorUnitOfWork,
    *,
    policy: AutoApprovalPolicy,
) -> tuple[int, int]:
    """Queue the announced items of consented users (each user's ``RecommendationsGenerated`` and review
    items), all in one statement (one per user took a third of the worker's CPU for an upload's batch);
    the policy approves those it covers among the ones this call added. How many were added, and
    approved."""
    candidates = []
    for data, items in announced:
        ids = set(data.recommendation_ids)
        candidates += [queued(i, data, envelope) for i in items if i.id in ids]
    added = set(await uow.queue.add(candidates))
    approved = [i for i in candidates if i.recommendation_id in added and auto_approves(policy, i)]
    if approved:
        await record_decisions(
            uow,
            approved,
            "approved",
            policy_operator(policy),
            POLICY_REASONS[policy],
            policy=policy,
            causation_id=envelope.id,
        )
    return len(added), len(approved)
