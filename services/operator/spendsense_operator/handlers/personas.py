"""``personas.assigned`` (a batch; ``persona.assigned``, one user) → the operator's projection of each
user's analysis: one history row per window (persona, every matching persona, rule-set version, as-of
date) and the window's latest signals from the analysis report, which comes by claim check from the
data bucket. Only while the user's consent is current: without it nothing is stored (and nothing is read
from the bucket)."""

from __future__ import annotations

import uuid
from datetime import datetime

from spendsense_operator.domain.users import ReportMismatch, projection_of
from spendsense_operator.handlers.unit_of_work import OperatorUnitOfWork, Projection
from spendsense_shared.blobs import BlobStore
from spendsense_shared.logging import get_logger
from spendsense_shared.messaging.catalog import EventData, PersonaAssigned, PersonasAssigned
from spendsense_shared.messaging.claim_check import redeem_many
from spendsense_shared.messaging.contracts import PersonaDetails
from spendsense_shared.messaging.envelope import EventEnvelope
from spendsense_shared.messaging.errors import PermanentError

log = get_logger(__name__)


class ForeignReport(PermanentError):
    """The claim check's report is of another user: retrying cannot help (dead-lettered)."""


async def project_persona(
    envelope: EventEnvelope, data: EventData, uow: OperatorUnitOfWork, *, store: BlobStore
) -> None:
    """Handler for ``persona.assigned``, one user's assignment as features published it before
    ``personas.assigned`` (the consumer has entered ``uow`` and commits after it)."""
    if not isinstance(data, PersonaAssigned):
        raise TypeError(f"project_persona handles persona.assigned, not {type(data).__name__}")
    await _project_consented(envelope, [(data, str(envelope.id))], uow, store=store)


async def project_personas(
    envelope: EventEnvelope, data: EventData, uow: OperatorUnitOfWork, *, store: BlobStore
) -> None:
    """Handler for ``personas.assigned``: every user's assignment projected as for ``persona.assigned``,
    all in the one unit of work."""
    if not isinstance(data, PersonasAssigned):
        raise TypeError(f"project_personas handles personas.assigned, not {type(data).__name__}")
    each = [(a, assignment_event_id(envelope.id, a.user_id)) for a in data.each()]
    await _project_consented(envelope, each, uow, store=store)


async def _project_consented(
    envelope: EventEnvelope,
    assignments: list[tuple[PersonaAssigned, str]],
    uow: OperatorUnitOfWork,
    *,
    store: BlobStore,
) -> None:
    """Project each (assignment, the event id it is recorded under) whose user's consent is current:
    nothing of a user is kept without it (and nothing is read from the bucket). Their details are redeemed
    together, each object read once (a batch's details share one): a claim that fails its check fails the
    batch, as it did one at a time. They are recorded together too, in two statements."""
    consented = await uow.consent.granted([a.user_id for a, _ in assignments])
    kept = [(assignment, event_id) for assignment, event_id in assignments if assignment.user_id in consented]
    if len(kept) < len(assignments):
        log.info("persona_skipped", reason="consent_required", users=len(assignments) - len(kept))
    if not kept:
        return
    bodies = await redeem_many(store, [a.details for a, _ in kept])
    projections = [
        _projection(assignment, PersonaDetails.model_validate_json(body), event_id, envelope.occurred_at)
        for (assignment, event_id), body in zip(kept, bodies, strict=True)
    ]
    recorded = await uow.personas.record_many(projections)
    added = sum(recorded)  # one line for the batch: an import's thousands of users are its rows, not logs
    log.info("persona_projected", users=added, already=len(recorded) - added)


def assignment_event_id(batch_id: uuid.UUID, user_id: str) -> str:
    """The id a batch's assignment is recorded under: the history keeps one row per event and window
    (a redelivery), so each user of the batch needs an id of their own, the same at every delivery."""
    return str(uuid.uuid5(batch_id, user_id))


def _projection(
    data: PersonaAssigned, details: PersonaDetails, event_id: str, assigned_at: datetime
) -> Projection:
    """One consented user's assignment (and its redeemed details) → history rows and latest signals,
    recorded idempotently (``PersonaProjection.record_many``): the same event's rows are recorded
    once, so is the same assignment published again in another event (the same user, upload, window,
    as-of date, rule set and persona: features announcing its stored analysis again), and older signals
    never replace newer."""
    try:
        return projection_of(data, details.report, event_id=event_id, assigned_at=assigned_at)
    except ReportMismatch as exc:
        raise ForeignReport(str(exc)) from exc
