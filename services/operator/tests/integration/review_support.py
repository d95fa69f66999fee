"""Shared by the operator's integration tests: review items, events, and delivery through the
handlers the service wires (each in one unit of work, as the consumer runs them)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from spendsense_operator.adapters.unit_of_work import SqlOperatorUnitOfWork
from spendsense_operator.bootstrap import SERVICE
from spendsense_shared.messaging.catalog import (
    ConsentGranted,
    ConsentRevoked,
    RecommendationsGenerated,
    new_event,
    parse_data,
)
from spendsense_shared.messaging.contracts import GuardrailResults, ReviewItem
from spendsense_shared.messaging.envelope import EventEnvelope

T0 = datetime(2026, 11, 1, tzinfo=UTC)
ALL_PASSED = GuardrailResults(tone=True, grounding=True, disclosure=True, length=True)


def review_item(rid: str, kind: str = "education", persona: str = "saver", **changes: Any) -> ReviewItem:
    fields: dict[str, Any] = {
        "id": rid,
        "kind": kind,
        "title": f"Title {rid}",
        "body": "A body long enough to read, about money.",
        "rationale": "Because your card is at 68 % of its limit.",
        "disclosure": "This is educational content, not financial advice.",
        "persona": persona,
        "catalog_item_id": f"item-{rid}",
        "catalog_version": "catalog-v1",
        "rank": 1,
        "guardrails": ALL_PASSED,
        "generator": "template",
        "fell_back_to_template": False,
    }
    return ReviewItem(**(fields | changes))


def generated(user_id: str, reviewed: list[ReviewItem], *, at: datetime = T0, **data: Any) -> EventEnvelope:
    event = RecommendationsGenerated(
        user_id=user_id,
        upload_id="up1",
        recommendation_ids=[i.id for i in reviewed],
        persona=reviewed[0].persona,
        **({"items": reviewed} | data),
    )
    return new_event(event, user_id=user_id).model_copy(update={"occurred_at": at})


class Operator:
    """The operator service's app on a migrated schema, and its event handlers."""

    def __init__(self, client: Any):
        self.client = client
        self.uow = client.platform.database.uow_factory(SqlOperatorUnitOfWork)
        self.handlers = SERVICE.bootstrap(client.platform).event_handlers

    async def deliver(self, event: EventEnvelope) -> None:
        async with self.uow() as uow:
            await self.handlers[event.type](event, parse_data(event), uow)
            await uow.commit()

    async def consent(self, user_id: str, granted: bool = True, hours: int = 0) -> None:
        at = T0 + timedelta(hours=hours)
        data: Any = (
            ConsentGranted(
                user_id=user_id, consent_id="c", policy_version="1", scopes=["analysis"], granted_at=at
            )
            if granted
            else ConsentRevoked(user_id=user_id, consent_id="c", revoked_at=at)
        )
        await self.deliver(new_event(data, user_id=user_id).model_copy(update={"occurred_at": at}))

    async def queue(self, user_id: str, *items: ReviewItem, at: datetime = T0) -> None:
        await self.consent(user_id)
        await self.deliver(generated(user_id, list(items), at=at))
