"""Builders shared by the operator's handler unit tests: review items with their facts and alternatives,
``recommendations.generated`` and ``persona.assigned`` events (the analysis report checked into the fake
data bucket), consent, and delivery through the handlers as the consumer runs them."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from functools import partial
from typing import Any

from spendsense_operator.handlers.personas import project_persona
from spendsense_operator.handlers.queue import enqueue_recommendations
from spendsense_shared.consent import project_consent
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

T0 = datetime(2026, 11, 1, tzinfo=UTC)
ALL_PASSED = GuardrailResults(tone=True, grounding=True, disclosure=True, length=True)

# The figures of a user with one card at 68 % utilization, as the recommender's fact table carries them.
FACTS = [
    CitableFact(
        key="card.name", unit="text", value="Visa Signature", display="Visa Signature", untrusted=True
    ),
    CitableFact(key="card.mask", unit="mask", value="4523", display="4523"),
    CitableFact(key="card.utilization", unit="percent", value=68.0, display="68 %"),
    CitableFact(key="card.balance", unit="usd", value=3400.0, display="$3,400"),
    CitableFact(key="card.limit", unit="usd", value=5000.0, display="$5,000"),
]
CATALOG_BODY = "Keeping balances under 30 % of each limit helps; a 12-month plan makes it steady."
GOOD_RATIONALE = "Your Visa Signature ending in 4523 is at 68 % utilization ($3,400 of a $5,000 limit)."


def alternative(catalog_item_id: str, **changes: Any) -> Alternative:
    fields: dict[str, Any] = {
        "catalog_item_id": catalog_item_id,
        "catalog_version": "catalog-v1",
        "title": f"Another read: {catalog_item_id}",
        "body": "A different article about paying down card balances step by step.",
        "rationale": "Your card ending in 4523 is at 68 % utilization, so this guide may help you plan.",
        "disclosure": DISCLOSURE,
    }
    return Alternative(**(fields | changes))


def item(rid: str, kind: str = "education", persona: str = "high_utilization", **changes: Any) -> ReviewItem:
    fields: dict[str, Any] = {
        "id": rid,
        "kind": kind,
        "title": "Credit utilization 101",
        "body": CATALOG_BODY,
        "rationale": GOOD_RATIONALE,
        "disclosure": DISCLOSURE,
        "persona": persona,
        "catalog_item_id": f"item-{rid}",
        "catalog_version": "catalog-v1",
        "rank": 1,
        "guardrails": ALL_PASSED,
        "generator": "template",
        "fell_back_to_template": False,
        "facts": FACTS,
        "trusted_names": ["Credit utilization 101"],
        "alternatives": [alternative("edu-balance-plan"), alternative("edu-autopay")],
    }
    return ReviewItem(**(fields | changes))


def generated(user_id: str, reviewed: list[ReviewItem], at: datetime = T0, **data: Any) -> EventEnvelope:
    event = RecommendationsGenerated(
        user_id=user_id,
        upload_id="up1",
        recommendation_ids=[i.id for i in reviewed],
        persona=reviewed[0].persona if reviewed else "saver",
        **({"items": reviewed} | data),
    )
    return new_event(event, user_id=user_id).model_copy(update={"occurred_at": at})


async def consent(uow: Any, user_id: str, granted: bool = True, hours: int = 0) -> None:
    at = T0 + timedelta(hours=hours)
    data: Any = (
        ConsentGranted(
            user_id=user_id, consent_id="c", policy_version="1", scopes=["analysis"], granted_at=at
        )
        if granted
        else ConsentRevoked(user_id=user_id, consent_id="c", revoked_at=at)
    )
    async with uow:
        await project_consent(
            new_event(data, user_id=user_id).model_copy(update={"occurred_at": at}), data, uow
        )
        await uow.commit()


async def handle(uow: Any, handler: Any, event: EventEnvelope) -> None:
    async with uow:
        await handler(event, parse_data(event), uow)
        await uow.commit()


async def deliver(uow: Any, bucket: Any, event: EventEnvelope, policy: str = "off") -> None:
    await handle(uow, partial(enqueue_recommendations, store=bucket, policy=policy), event)


async def queued(uow: Any, bucket: Any, user_id: str, *items: ReviewItem, at: datetime = T0) -> None:
    await consent(uow, user_id)
    await deliver(uow, bucket, generated(user_id, list(items), at=at))


def report(user_id: str, as_of: date, utilization: float = 0.68, **windows: Any) -> AnalysisReport:
    """An analysis report with one card per window (30d and 180d unless ``windows`` says otherwise)."""
    card = {"name": "Visa Signature", "mask": "4523", "utilization": utilization, "account_id": "acc-1"}
    default = {
        window: {
            "persona": {"primary": "high_utilization", "matched": [{"id": "high_utilization"}]},
            "signals": {
                "window_days": days,
                "credit": {"max_utilization": utilization, "card_count": 1, "cards": [card]},
                "cash_flow": {"income": 4200.0, "spending": 3900.0},
            },
        }
        for window, days in (("30d", 30), ("180d", 180))
    }
    return AnalysisReport.model_validate({"user_id": user_id, "as_of": as_of, "windows": windows or default})


async def assigned(
    bucket: Any,
    user_id: str,
    *,
    as_of: date = date(2026, 10, 31),
    at: datetime = T0,
    personas: dict[str, str] | None = None,
    matched: dict[str, list[str]] | None = None,
    rule_set_version: str = "personas-v1",
    analysis: AnalysisReport | None = None,
    reason: str = "upload",
    upload_id: str | None = "up1",
) -> EventEnvelope:
    """``persona.assigned`` with its details checked into ``bucket`` as the features service does."""
    details = PersonaDetails(report=analysis or report(user_id, as_of))
    body = details.model_dump_json(by_alias=True).encode()
    key = f"features/users/{user_id}/analysis/{at.isoformat()}-{rule_set_version}.json"
    [claim] = await check_in_many(bucket, [(key, body)])
    personas = personas or {"30d": "high_utilization", "180d": "high_utilization"}
    data = PersonaAssigned(
        user_id=user_id,
        upload_id=upload_id,
        as_of=as_of,
        rule_set_version=rule_set_version,
        personas=personas,
        matched=matched if matched is not None else {w: [p] for w, p in personas.items()},
        reason=reason,  # type: ignore[arg-type]
        details=claim,
    )
    return new_event(data, user_id=user_id).model_copy(update={"occurred_at": at})


async def project(uow: Any, bucket: Any, event: EventEnvelope) -> None:
    await handle(uow, partial(project_persona, store=bucket), event)
