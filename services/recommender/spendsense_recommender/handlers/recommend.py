"""Use cases: a persona was assigned → recommendations under guardrails, stored for review, announced;
an operator reviewed one → its status and trace follow."""

from __future__ import annotations

from spendsense_recommender.domain.eligibility import UserFacts
from spendsense_recommender.domain.recommend import build_recommendations
from spendsense_recommender.domain.snapshot import snapshot_of
from spendsense_recommender.domain.writer import Writer
from spendsense_recommender.handlers.unit_of_work import RecommenderUnitOfWork
from spendsense_shared.blobs import BlobStore
from spendsense_shared.logging import get_logger
from spendsense_shared.messaging.catalog import (
    EventData,
    PersonaAssigned,
    RecommendationReviewed,
    RecommendationsGenerated,
    new_event,
)
from spendsense_shared.messaging.claim_check import redeem
from spendsense_shared.messaging.contracts import PersonaDetails
from spendsense_shared.messaging.envelope import EventEnvelope

log = get_logger(__name__)
STATUS_OF_DECISION = {
    "approved": "approved",
    "rejected": "rejected",
    "overridden": "approved",
    "flagged": "flagged",
}


async def generate_recommendations(
    envelope: EventEnvelope,
    data: EventData,
    uow: RecommenderUnitOfWork,
    *,
    store: BlobStore,
    writer: Writer,
    auto_approve: bool,
) -> None:
    """Handler for ``persona.assigned`` (the consumer has entered ``uow`` and commits after it)."""
    assert isinstance(data, PersonaAssigned)
    if not await uow.consent.is_granted(data.user_id):
        log.info("recommendations_skipped", reason="consent_required")
        return  # nothing is generated without current consent
    # The claim is redeemed and the report parsed once, here; the domain gets the typed snapshot.
    details = PersonaDetails.model_validate_json(await redeem(store, data.details))
    snapshot = snapshot_of(details.report)
    repo = uow.recommendations
    result = await build_recommendations(
        snapshot,
        UserFacts.derive(snapshot, details.accounts),
        rule_set_version=data.rule_set_version,
        upload_id=data.upload_id,
        as_of=data.as_of,
        writer=writer,
        dismissed=await repo.dismissed_items(data.user_id),
        previous_hash=await repo.last_trace_hash(data.user_id),
    )
    added = await repo.add(result.items, upload_id=data.upload_id, status="pending_review")
    if not added:
        return  # a redelivery or a re-run of the same input: nothing new
    if auto_approve:
        for recommendation_id in added:
            await repo.record_action(
                recommendation_id,
                {"actor": "system", "action": "auto_approved", "reason": "SPENDSENSE_AUTO_APPROVE is on"},
                "approved",
            )
    generated = RecommendationsGenerated(
        user_id=data.user_id,
        upload_id=data.upload_id,
        recommendation_ids=added,
        persona=data.personas["180d"],
    )
    uow.publish(new_event(generated, user_id=data.user_id, causation_id=envelope.id))


async def apply_review(envelope: EventEnvelope, data: EventData, uow: RecommenderUnitOfWork) -> None:
    """Handler for ``recommendation.reviewed``."""
    assert isinstance(data, RecommendationReviewed)
    action = {"actor": data.operator_id, "action": data.decision, "reason": data.reason}
    await uow.recommendations.record_action(data.recommendation_id, action, STATUS_OF_DECISION[data.decision])
