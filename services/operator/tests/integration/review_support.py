"""Shared by the operator's integration tests: review items, events, and delivery through the
handlers the service wires (each in one unit of work, as the consumer runs them)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

from sqlalchemy import select

from spendsense_operator.adapters.unit_of_work import SqlOperatorUnitOfWork
from spendsense_operator.bootstrap import SERVICE
from spendsense_shared.guardrails import DISCLOSURE
from spendsense_shared.messaging.catalog import (
    ConsentGranted,
    ConsentRevoked,
    PersonaAssigned,
    RecommendationsGenerated,
    new_event,
    parse_data,
)
from spendsense_shared.messaging.claim_check import check_in_many
from spendsense_shared.messaging.contracts import (
    Alternative,
    AnalysisReport,
    CitableFact,
    GuardrailResults,
    PersonaDetails,
    ReviewItem,
)
from spendsense_shared.messaging.envelope import EventEnvelope
from spendsense_shared.storage import ObjectStore

T0 = datetime(2026, 11, 1, tzinfo=UTC)
ALL_PASSED = GuardrailResults(tone=True, grounding=True, disclosure=True, length=True)
FACTS = [
    CitableFact(key="card.mask", unit="mask", value="4523", display="4523"),
    CitableFact(key="card.utilization", unit="percent", value=68.0, display="68 %"),
    CitableFact(key="card.balance", unit="usd", value=3400.0, display="$3,400"),
]
CATALOG_BODY = "Keeping balances under 30 % of each limit helps; a 12-month plan makes it steady."
ALTERNATIVES = [
    Alternative(
        catalog_item_id="edu-autopay",
        catalog_version="catalog-v1",
        title="Autopay basics",
        body="How autopay keeps card payments on time, every month.",
        rationale="Your card ending in 4523 is at 68 % utilization; autopay can keep payments steady.",
        disclosure=DISCLOSURE,
    )
]


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


def reviewable(rid: str, kind: str = "education", persona: str = "saver", **changes: Any) -> ReviewItem:
    """A review item with the figures it may cite, a trusted title and one alternative."""
    fields: dict[str, Any] = {
        "title": "Credit utilization 101",
        "body": CATALOG_BODY,
        "rationale": "Your card ending in 4523 is at 68 % utilization ($3,400 balance).",
        "disclosure": DISCLOSURE,
        "facts": FACTS,
        "trusted_names": ["Credit utilization 101"],
        "alternatives": ALTERNATIVES,
    }
    return review_item(rid, kind, persona, **(fields | changes))


def analysis(user_id: str, as_of: date, utilization: float = 0.68) -> AnalysisReport:
    card = {"name": "Visa Signature", "mask": "4523", "utilization": utilization}
    return AnalysisReport.model_validate(
        {
            "user_id": user_id,
            "as_of": as_of,
            "windows": {
                window: {
                    "persona": {"primary": "high_utilization", "matched": [{"id": "high_utilization"}]},
                    "signals": {
                        "window_days": days,
                        "credit": {"max_utilization": utilization, "cards": [card]},
                    },
                }
                for window, days in (("30d", 30), ("180d", 180))
            },
        }
    )


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

    async def data_bucket(self) -> ObjectStore:
        """This test's data bucket on the AWS emulator (created on first use)."""
        platform = self.client.platform
        name = platform.topology.buckets["data"]
        async with platform.aws.client("s3") as s3:
            buckets = {b["Name"] for b in (await s3.list_buckets()).get("Buckets", [])}
            if name not in buckets:
                await s3.create_bucket(Bucket=name)
        return ObjectStore(platform.aws, name, "")

    async def assigned(
        self,
        user_id: str,
        *,
        as_of: date = date(2026, 10, 31),
        at: datetime = T0,
        personas: dict[str, str] | None = None,
        utilization: float = 0.68,
        rule_set_version: str = "personas-v1",
        upload_id: str = "up1",
    ) -> EventEnvelope:
        """``persona.assigned`` with its details checked into the data bucket, as features does."""
        body = PersonaDetails(report=analysis(user_id, as_of, utilization)).model_dump_json(by_alias=True)
        key = f"features/users/{user_id}/analysis/{at.isoformat()}.json"
        [claim] = await check_in_many(await self.data_bucket(), [(key, body.encode())])
        personas = personas or {"30d": "high_utilization", "180d": "high_utilization"}
        data = PersonaAssigned(
            user_id=user_id,
            upload_id=upload_id,
            as_of=as_of,
            rule_set_version=rule_set_version,
            personas=personas,
            matched={w: [p] for w, p in personas.items()},
            details=claim,
        )
        return new_event(data, user_id=user_id).model_copy(update={"occurred_at": at})

    async def outbox(self) -> list[EventEnvelope]:
        table = self.client.platform.database.tables.outbox
        async with self.client.platform.database.engine.connect() as conn:
            rows = await conn.execute(select(table.c.payload).order_by(table.c.seq))
            return [EventEnvelope.model_validate(r.payload) for r in rows]

    def headers(self, who: str = "op-1", role: str = "operator") -> dict[str, str]:
        return dict(self.client.as_(who, role))
