"""``recommendations.generated`` → the review queue: every new item pending, only while the user's
consent is current; the items come inline or by claim check from the data bucket. The auto-approval
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
from spendsense_shared.messaging.catalog import EventData, RecommendationsGenerated
from spendsense_shared.messaging.claim_check import redeem
from spendsense_shared.messaging.contracts import ReviewItem, ReviewItems
from spendsense_shared.messaging.envelope import EventEnvelope

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
    """Handler for ``recommendations.generated`` (the consumer has entered ``uow`` and commits after it).
    Idempotent: an item already queued (a redelivery, a re-announcement) is left as it is, and the policy
    acts only on the items this event added."""
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
    announced = set(data.recommendation_ids)
    candidates = [queued(i, data, envelope) for i in items if i.id in announced]
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
    log.info("review_queued", items=len(added), auto_approved=len(approved), policy=policy)
