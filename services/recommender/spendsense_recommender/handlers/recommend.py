"""Use cases: a persona was assigned → recommendations under guardrails, stored for review, announced;
an operator reviewed one → its status and trace follow."""

from __future__ import annotations

from sqlalchemy import select

from spendsense_recommender.adapters.orm import consent_projection
from spendsense_recommender.adapters.repository import RecommendationRepository
from spendsense_recommender.domain.eligibility import user_facts_from_report
from spendsense_recommender.domain.recommend import build_recommendations
from spendsense_recommender.domain.writer import Writer
from spendsense_shared.db import UnitOfWork
from spendsense_shared.logging import get_logger
from spendsense_shared.messaging.catalog import (
    EventData,
    PersonaAssigned,
    RecommendationReviewed,
    RecommendationsGenerated,
    new_event,
)
from spendsense_shared.messaging.envelope import EventEnvelope

log = get_logger(__name__)
STATUS_OF_DECISION = {
    "approved": "approved",
    "rejected": "rejected",
    "overridden": "approved",
    "flagged": "flagged",
}


async def has_consent(uow: UnitOfWork, user_id: str) -> bool:
    row = (
        await uow.session.execute(
            select(consent_projection.c.status).where(consent_projection.c.user_id == user_id)
        )
    ).first()
    return row is not None and row.status == "granted"


class GenerateRecommendations:
    """Handler for ``persona.assigned``."""

    def __init__(self, writer: Writer, auto_approve: bool):
        self.writer = writer
        self.auto_approve = auto_approve

    async def __call__(self, envelope: EventEnvelope, data: EventData, uow: UnitOfWork) -> None:
        assert isinstance(data, PersonaAssigned)
        if not data.report:
            log.warning("persona_without_report", user=data.user_id)
            return
        if not await has_consent(uow, data.user_id):
            log.info("recommendations_skipped", reason="consent_required")
            return  # nothing is generated without current consent
        repo = RecommendationRepository(uow.session)
        result = await build_recommendations(
            data.report,
            user_facts_from_report(data.report, data.accounts),
            rule_set_version=data.rule_set_version,
            upload_id=data.upload_id,
            as_of=data.as_of,
            writer=self.writer,
            dismissed=await repo.dismissed_items(data.user_id),
            previous_hash=await repo.last_trace_hash(data.user_id),
        )
        added = await repo.add(result.items, upload_id=data.upload_id, status="pending_review")
        if not added:
            return  # a redelivery or a re-run of the same input: nothing new
        if self.auto_approve:
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


async def apply_review(envelope: EventEnvelope, data: EventData, uow: UnitOfWork) -> None:
    """Handler for ``recommendation.reviewed``."""
    assert isinstance(data, RecommendationReviewed)
    action = {"actor": data.operator_id, "action": data.decision, "reason": data.reason}
    await RecommendationRepository(uow.session).record_action(
        data.recommendation_id, action, STATUS_OF_DECISION[data.decision]
    )
