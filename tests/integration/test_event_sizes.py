"""Every event stays small, even for the largest user the generator makes: the analysis report (which
grows with a user's cards and recurring streams) travels by claim check, never inside an event.

The users go through the real services' handlers on real PostgreSQL and S3: consent and a batch upload
through profile's API and its worker's upload job, then features' ``upload.ingested`` handler, then the
recommender's ``personas.assigned`` handler; every event each service wrote to its outbox is measured as the relay
sends it.
"""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import select

from spendsense_cli.synthetic import build_user
from spendsense_features.bootstrap import SERVICE as FEATURES
from spendsense_profile.bootstrap import SERVICE as PROFILE
from spendsense_profile.bootstrap import upload_jobs
from spendsense_recommender.bootstrap import SERVICE as RECOMMENDER
from spendsense_shared.messaging.catalog import MAX_EVENT_BYTES, parse_data
from spendsense_shared.messaging.claim_check import ClaimCheck
from spendsense_shared.messaging.envelope import EventEnvelope
from spendsense_shared.platform import Platform
from spendsense_shared.service import Wiring

LARGEST_USERS = 6  # one of each persona the generator assigns first: their reports differ in shape


async def outbox(platform: Platform) -> list[EventEnvelope]:
    table = platform.database.tables.outbox
    async with platform.database.engine.connect() as conn:
        rows = await conn.execute(select(table.c.payload).order_by(table.c.seq))
        return [EventEnvelope.model_validate(r.payload) for r in rows]


async def deliver(wiring: Wiring, events: list[EventEnvelope], types: set[str]) -> None:
    """Hand each event to the service's handler in its own unit of work, as the consumer does."""
    for event in (e for e in events if e.type in types):
        async with wiring.unit_of_work() as uow:
            await wiring.event_handlers[event.type](event, parse_data(event), uow)
            await uow.commit()


def wire_size(event: EventEnvelope) -> int:
    return len(json.dumps(event.model_dump(mode="json")).encode())  # what the relay publishes


async def test_every_event_stays_under_64_kb_for_the_largest_users(service_client, migrated, topology):
    users = [build_user(i, seed=7, largest=True)[0] for i in range(LARGEST_USERS)]
    profile = await service_client(PROFILE)
    for user in users:
        me = profile.as_(user["user_id"])
        granted = await profile.post("/api/v1/consent", json={"user_id": user["user_id"]}, headers=me)
        assert granted.status_code == 201, granted.text
    upload = await profile.post(
        "/api/v1/uploads", json={"users": users}, headers=profile.as_("op-1", "operator")
    )
    assert upload.status_code == 202, upload.text
    assert await upload_jobs(profile.platform, PROFILE.bootstrap(profile.platform)).run_pending() == 1

    services: dict[str, tuple[Platform, Wiring]] = {}
    for definition in (FEATURES, RECOMMENDER):
        platform = definition.platform(await migrated(definition))
        services[definition.name] = (platform, definition.bootstrap(platform))
    features, recommender = services["features"], services["recommender"]
    try:
        profile_events = await outbox(profile.platform)
        await deliver(features[1], profile_events, {"consent.granted", "upload.ingested"})
        await deliver(recommender[1], profile_events, {"consent.granted"})
        features_events = await outbox(features[0])
        await deliver(recommender[1], features_events, {"personas.assigned"})
        recommender_events = await outbox(recommender[0])
    finally:
        for platform, _ in services.values():
            await platform.close()

    published = profile_events + features_events + recommender_events
    sizes: dict[str, int] = {}
    for event in published:
        sizes[event.type] = max(sizes.get(event.type, 0), wire_size(event))
    assert {"upload.ingested", "personas.assigned", "recommendations.batch_generated"} <= set(sizes), sizes
    assert "recommendations.generated" not in sizes  # no longer published
    batches = [e for e in features_events if e.type == "personas.assigned"]
    assert [len(e.data["assignments"]) for e in batches] == [LARGEST_USERS]  # one announcement for all
    generated = [e for e in recommender_events if e.type == "recommendations.batch_generated"]
    assert [len(e.data["generated"]) for e in generated] == [LARGEST_USERS]  # and one for their reviews
    too_large = {t: s for t, s in sizes.items() if s >= MAX_EVENT_BYTES}
    assert not too_large, f"events over {MAX_EVENT_BYTES} bytes: {too_large}"

    # What the claim checks carry would not have fit: the largest report is far bigger than its event,
    # which carries every user's claim.
    claims: list[Any] = [
        ClaimCheck.model_validate(a["details"]) for e in batches for a in e.data["assignments"]
    ]
    assert max(c.size_bytes for c in claims) > 4 * sizes["personas.assigned"]
    print(
        f"largest event per type (bytes): {sizes}; largest claim-checked details: "
        f"{max(c.size_bytes for c in claims)} bytes"
    )
