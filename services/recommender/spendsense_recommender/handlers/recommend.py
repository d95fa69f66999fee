"""Use cases: a persona was assigned → recommendations under guardrails, stored for review, announced;
an operator reviewed one → its status and trace follow."""

from __future__ import annotations

from typing import Any

from spendsense_recommender.domain.eligibility import UserFacts
from spendsense_recommender.domain.recommend import Recommendation, build_recommendations
from spendsense_recommender.domain.snapshot import snapshot_of
from spendsense_recommender.domain.writer import Writer
from spendsense_recommender.handlers.unit_of_work import RecommenderUnitOfWork
from spendsense_shared.blobs import BlobStore
from spendsense_shared.logging import get_logger
from spendsense_shared.messaging.catalog import (
    INLINE_ITEMS_MAX_BYTES,
    EventData,
    PersonaAssigned,
    RecommendationReviewed,
    RecommendationsGenerated,
    new_event,
)
from spendsense_shared.messaging.claim_check import check_in_many, content_hash, redeem
from spendsense_shared.messaging.contracts import (
    GuardrailResults,
    PersonaDetails,
    ReviewItem,
    ReviewItems,
)
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
    new = set(added)
    generated = RecommendationsGenerated(
        user_id=data.user_id,
        upload_id=data.upload_id,
        recommendation_ids=added,
        persona=data.personas["180d"],
        **await review_payload(store, data.user_id, [review_item(r) for r in result.items if r.id in new]),
    )
    uow.publish(new_event(generated, user_id=data.user_id, causation_id=envelope.id))


def _passed(check: Any) -> bool:
    return bool(check.get("passed")) if isinstance(check, dict) else bool(check)


def review_item(rec: Recommendation) -> ReviewItem:
    """What an operator needs to review ``rec``: its text, its catalog item and the guardrail results
    and generator its decision trace recorded."""
    guardrails: dict[str, Any] = rec.trace.get("guardrails") or {}
    generator: dict[str, Any] = rec.trace.get("generator") or {}
    catalog: dict[str, Any] = rec.trace.get("catalog") or {}
    return ReviewItem(
        id=rec.id,
        kind=rec.kind,
        title=rec.title,
        body=rec.body,
        rationale=rec.rationale,
        disclosure=rec.disclosure,
        persona=rec.persona,
        catalog_item_id=rec.item_id,
        catalog_version=str(catalog.get("version", "")),
        rank=rec.rank,
        guardrails=GuardrailResults(
            tone=_passed(guardrails.get("tone")),
            grounding=_passed(guardrails.get("grounding")),
            disclosure=_passed(guardrails.get("disclosure")),
            length=_passed(guardrails.get("length")),
        ),
        generator=rec.generator,
        fell_back_to_template=generator.get("fallback") is not None,
    )


async def review_payload(store: BlobStore, user_id: str, items: list[ReviewItem]) -> dict[str, Any]:
    """The review items as ``recommendations.generated`` carries them: inline (``items``) while the
    serialized list stays within ``INLINE_ITEMS_MAX_BYTES``, else checked into the data bucket
    (``items_claim``). The object is written before the event exists: a rollback leaves at most an
    unreferenced object, never an event without its payload."""
    body = ReviewItems(items=items).model_dump_json().encode()
    if len(body) <= INLINE_ITEMS_MAX_BYTES:
        return {"items": items}
    [claim] = await check_in_many(store, [(review_key(user_id, body), body)])
    return {"items_claim": claim}


def review_key(user_id: str, body: bytes) -> str:
    return f"recommender/users/{user_id}/review/{content_hash(body)[:16]}.json"


async def apply_review(envelope: EventEnvelope, data: EventData, uow: RecommenderUnitOfWork) -> None:
    """Handler for ``recommendation.reviewed``."""
    assert isinstance(data, RecommendationReviewed)
    action = {"actor": data.operator_id, "action": data.decision, "reason": data.reason}
    await uow.recommendations.record_action(data.recommendation_id, action, STATUS_OF_DECISION[data.decision])
