"""Use cases: a persona was assigned → recommendations under guardrails, stored for review, announced
with what a reviewer needs (a batch's users in ``recommendations.batch_generated``, their review items as
the lines of one object in the data bucket); a reviewer decided on one → its status, text and trace follow
(:mod:`spendsense_recommender.domain.review`), and what became visible is announced
(``recommendations.published``)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from spendsense_recommender.domain.eligibility import UserFacts
from spendsense_recommender.domain.recommend import BuildInput, Recommendation, RecommendationSet
from spendsense_recommender.domain.review import Override, Review, decide_review
from spendsense_recommender.domain.snapshot import snapshot_of
from spendsense_recommender.domain.writer import Writer
from spendsense_recommender.handlers.unit_of_work import (
    RecommendationRepository,
    RecommenderUnitOfWork,
    UserHistory,
)
from spendsense_shared.blobs import BlobStore
from spendsense_shared.logging import get_logger
from spendsense_shared.messaging.batching import event_batches
from spendsense_shared.messaging.catalog import (
    GENERATED_MAX_BYTES,
    GENERATED_PER_EVENT_MAX,
    EventData,
    GeneratedForUser,
    PersonaAssigned,
    PersonasAssigned,
    RecommendationReviewed,
    RecommendationsBatchGenerated,
    RecommendationsPublished,
    new_event,
)
from spendsense_shared.messaging.claim_check import check_in_batch, content_hash, redeem_many
from spendsense_shared.messaging.contracts import (
    Alternative,
    CitableFact,
    GuardrailResults,
    PersonaDetails,
    ReviewItem,
    ReviewItems,
)
from spendsense_shared.messaging.envelope import EventEnvelope

log = get_logger(__name__)


async def generate_recommendations(
    envelope: EventEnvelope,
    data: EventData,
    uow: RecommenderUnitOfWork,
    *,
    store: BlobStore,
    writer: Writer,
    build: Builder | None = None,
) -> None:
    """Handler for ``persona.assigned``, one user's assignment as features published it before
    ``personas.assigned`` (the consumer has entered ``uow`` and commits after it): a batch of one."""
    assert isinstance(data, PersonaAssigned)
    await _recommend_consented(envelope, [data], uow, store=store, build=build or in_process(writer))


async def generate_for_batch(
    envelope: EventEnvelope,
    data: EventData,
    uow: RecommenderUnitOfWork,
    *,
    store: BlobStore,
    writer: Writer,
    build: Builder | None = None,
) -> None:
    """Handler for ``personas.assigned``: every user's assignment as for ``persona.assigned``, all in the
    one unit of work (a failure retries the batch: every step is idempotent), announced together in
    ``recommendations.batch_generated``. ``build``: where the recommendations are built (by default here,
    with ``writer``; the worker's pool of processes when it writes from templates)."""
    assert isinstance(data, PersonasAssigned)
    await _recommend_consented(envelope, data.each(), uow, store=store, build=build or in_process(writer))


# Builds each user's recommendations (in order): in this process with a writer (:func:`in_process`), or
# in the worker's pool of processes with the template writer (``adapters.build_pool``).
Builder = Callable[[list[BuildInput]], Awaitable[list[RecommendationSet]]]


def in_process(writer: Writer) -> Builder:
    async def build(inputs: list[BuildInput]) -> list[RecommendationSet]:
        return [await one.build(writer) for one in inputs]

    return build


@dataclass(frozen=True)
class Generated:
    """What :func:`_generated` has to announce of one user: their recommendations, and the review
    items to check in (``None``: announced again without them, progress only)."""

    user_id: str
    upload_id: str | None
    recommendation_ids: list[str]
    persona: str
    items: list[ReviewItem] | None


async def _recommend_consented(
    envelope: EventEnvelope,
    assignments: list[PersonaAssigned],
    uow: RecommenderUnitOfWork,
    *,
    store: BlobStore,
    build: Builder,
) -> None:
    """Recommendations for each user whose consent is current: nothing is generated without it (and
    nothing is read from the bucket). Their details are redeemed together, each object read once (a
    batch's details share one): a claim that fails its check fails the batch, as it did one at a time.
    The users' recommendations are built together (``build``: on every core, in the worker) and stored
    together; what is generated is announced together (:func:`announce`)."""
    users = {a.user_id for a in assignments}
    consented = await uow.consent.granted(sorted(users))
    if skipped := len(users - consented):
        log.info("recommendations_skipped", reason="consent_required", users=skipped)
    kept = [a for a in assignments if a.user_id in consented]
    # The claims are redeemed and the reports parsed once, here; the domain gets the typed snapshot.
    bodies = await redeem_many(store, [a.details for a in kept])
    each = [(a, PersonaDetails.model_validate_json(body)) for a, body in zip(kept, bodies, strict=True)]
    first, again = _first_and_again(each)
    generated = await _recommended(first, uow, build)
    for one in again:  # continues the chain its first assignment extended: its history is read again
        generated += await _recommended([one], uow, build)
    await announce(envelope, [g for g in generated if g is not None], uow, store=store)


Assigned = tuple[PersonaAssigned, PersonaDetails]


def _first_and_again(each: list[Assigned]) -> tuple[list[Assigned], list[Assigned]]:
    """Each user's first assignment in the batch, and those that come after a user's first."""
    first: list[Assigned] = []
    again: list[Assigned] = []
    seen: set[str] = set()
    for pair in each:
        (again if pair[0].user_id in seen else first).append(pair)
        seen.add(pair[0].user_id)
    return first, again


async def _recommended(
    assignments: list[Assigned], uow: RecommenderUnitOfWork, build: Builder
) -> list[Generated | None]:
    """Each of these assignments (of different users) built and stored, together; what to announce."""
    repo = uow.recommendations
    histories = await repo.histories([a.user_id for a, _ in assignments])
    results = await build([_build_input(a, details, histories[a.user_id]) for a, details in assignments])
    added = await repo.add_many(
        [(result.items, a.upload_id) for (a, _), result in zip(assignments, results, strict=True)],
        status="pending_review",
    )
    return [
        await _generated(a, result, ids, repo)
        for (a, _), result, ids in zip(assignments, results, added, strict=True)
    ]


def _build_input(data: PersonaAssigned, details: PersonaDetails, history: UserHistory) -> BuildInput:
    snapshot = snapshot_of(details.report)
    return BuildInput(
        snapshot,
        UserFacts.derive(snapshot, details.accounts),
        rule_set_version=data.rule_set_version,
        upload_id=data.upload_id,
        as_of=data.as_of,
        dismissed=frozenset(history.dismissed),
        previous_hash=history.last_trace_hash,
    )


async def _generated(
    data: PersonaAssigned, result: RecommendationSet, added: list[str], repo: RecommendationRepository
) -> Generated | None:
    """What to announce of one user's recommendations, ``added`` of them stored just now (``None``:
    nothing)."""
    if not added:  # a re-run of the same input: nothing new
        if data.upload_id is not None and data.reason == "upload" and result.items:
            # the assignment published again for an upload (the profile's reconciler: no announcement
            # of the recommendations reached it): announce the progress again. With the review items
            # when this re-run wrote exactly the stored texts (a first announcement the emulator lost,
            # or whose claim it lost, is queued after all; the operator queues an item once); without
            # them when they differ (a model's re-run), so no reviewer ever sees a text other than the
            # one stored.
            return Generated(
                user_id=data.user_id,
                upload_id=data.upload_id,
                recommendation_ids=[r.id for r in result.items],
                persona=data.personas["180d"],
                items=await _same_review_items(repo, result.items),
            )
        return None
    new = set(added)
    return Generated(
        user_id=data.user_id,
        upload_id=data.upload_id,
        recommendation_ids=added,
        persona=data.personas["180d"],
        items=[review_item(r) for r in result.items if r.id in new],
    )


async def _same_review_items(
    repo: RecommendationRepository, items: Sequence[Recommendation]
) -> list[ReviewItem] | None:
    stored = await repo.stored_texts([r.id for r in items])
    if any(stored.get(r.id) != (r.title, r.body, r.rationale, r.disclosure) for r in items):
        log.info("review_items_not_announced_again", reason="texts_differ_from_stored")
        return None
    return [review_item(r) for r in items]


async def announce(
    envelope: EventEnvelope, generated: list[Generated], uow: RecommenderUnitOfWork, *, store: BlobStore
) -> None:
    """Check in every user's review items as a line of one JSON Lines object (:func:`review_line`; one
    PUT for the batch, none when no user has items), remember in ``uow`` which users' lines the object
    holds (an erasure blanks them), and publish ``recommendations.batch_generated``: one event per upload,
    split only to stay within its limits. The object is written before the events exist: a rollback
    leaves at most an unreferenced object, never an event without its payload. The envelope names no
    user: the event is about many."""
    with_items = [g for g in generated if g.items is not None]
    claims = await check_in_batch(
        store, review_key, [review_line(g.user_id, g.items or []) for g in with_items]
    )
    await uow.review_objects.remember([(g.user_id, c.key) for g, c in zip(with_items, claims, strict=True)])
    claim_of = {id(g): c for g, c in zip(with_items, claims, strict=True)}
    by_upload: dict[str | None, list[GeneratedForUser]] = {}
    for g in generated:
        entry = GeneratedForUser(
            user_id=g.user_id,
            recommendation_ids=g.recommendation_ids,
            persona=g.persona,
            items_claim=claim_of.get(id(g)),
        )
        by_upload.setdefault(g.upload_id, []).append(entry)
    for upload_id, entries in by_upload.items():
        for batch in generated_batches(entries):
            event = RecommendationsBatchGenerated(upload_id=upload_id, generated=batch)
            uow.publish(new_event(event, causation_id=envelope.id))


def generated_batches(entries: list[GeneratedForUser]) -> list[list[GeneratedForUser]]:
    """``entries`` in as few events as ``GENERATED_PER_EVENT_MAX`` and ``GENERATED_MAX_BYTES`` allow."""
    return event_batches(entries, GENERATED_PER_EVENT_MAX, GENERATED_MAX_BYTES)


def review_line(user_id: str, items: list[ReviewItem]) -> bytes:
    """A user's review items as one line of a batch object (JSON escapes every newline within a string),
    naming the user: an erasure finds their lines by it."""
    return ReviewItems(items=items, user_id=user_id).model_dump_json().encode()


def review_key(whole: bytes) -> str:
    """Content-addressed: the same batch's review items checked in again land under the same key."""
    return f"recommender/reviews/{content_hash(whole)[:32]}.jsonl"


def _passed(check: Any) -> bool:
    return bool(check.get("passed")) if isinstance(check, dict) else bool(check)


def _alternative(recorded: dict[str, Any]) -> Alternative:
    return Alternative(**{name: recorded[name] for name in Alternative.model_fields})


def review_item(rec: Recommendation) -> ReviewItem:
    """What an operator needs to review ``rec``, as its decision trace recorded it: its text and catalog
    item, the guardrail results and generator, the facts and trusted names its text was checked against,
    and the alternatives an override may put in its place."""
    guardrails: dict[str, Any] = rec.trace.get("guardrails") or {}
    generator: dict[str, Any] = rec.trace.get("generator") or {}
    catalog: dict[str, Any] = rec.trace.get("catalog") or {}
    citable: dict[str, Any] = rec.trace.get("citable") or {}
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
        facts=[CitableFact.model_validate(f) for f in citable.get("facts", [])],
        trusted_names=list(citable.get("trusted_names", [])),
        alternatives=[_alternative(a) for a in rec.trace.get("alternatives") or []],
    )


def _review(envelope: EventEnvelope, data: RecommendationReviewed) -> Review:
    override = data.override
    return Review(
        event_id=str(envelope.id),
        decision=data.decision,
        actor=data.operator_id,
        reason=data.reason,
        policy=data.policy,
        override=None if override is None else Override(**override.model_dump()),
        decided_at=envelope.occurred_at,
    )


async def apply_review(envelope: EventEnvelope, data: EventData, uow: RecommenderUnitOfWork) -> None:
    """Handler for ``recommendation.reviewed`` (the consumer has entered ``uow`` and commits after it)."""
    assert isinstance(data, RecommendationReviewed)
    repo = uow.recommendations
    target = await repo.for_review(data.recommendation_id)
    if target is None:  # never stored here, or erased since
        log.info("review_ignored", reason="unknown_recommendation", recommendation=data.recommendation_id)
        return
    if target.user_id != data.user_id:  # e.g. merged into another account since it was queued
        log.info("review_user_differs", recommendation=target.recommendation_id, owner=target.user_id)
    outcome = decide_review(
        target,
        _review(envelope, data),
        consented=await uow.consent.is_granted(target.user_id),
        at=datetime.now(UTC),
    )
    if outcome is None:
        return  # this event is already in the trace
    await repo.save_review(
        target.recommendation_id, status=outcome.status, trace=outcome.trace, shown=outcome.shown
    )
    log_review = log.warning if outcome.outcome in ("refused", "not_applied") else log.info
    log_review(
        "review_applied",
        recommendation=target.recommendation_id,
        decision=data.decision,
        outcome=outcome.outcome,
        status=outcome.status,
        reasons=outcome.action.get("override", {}).get("guardrails", {}).get("reasons"),
    )
    if outcome.became_visible:
        published = RecommendationsPublished(
            user_id=target.user_id, recommendation_ids=[target.recommendation_id]
        )
        uow.publish(new_event(published, user_id=target.user_id, causation_id=envelope.id))
