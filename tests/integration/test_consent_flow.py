"""Consent granted in profile reaches the features, recommender and operator projections through the
real outbox, SNS and SQS; revocation follows; an older event never overwrites a newer state."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import httpx

from spendsense_features.adapters.orm import consent_projection as features_projection
from spendsense_features.bootstrap import SERVICE as FEATURES
from spendsense_operator.adapters.orm import consent_projection as operator_projection
from spendsense_operator.bootstrap import SERVICE as OPERATOR
from spendsense_profile.bootstrap import SERVICE as PROFILE
from spendsense_recommender.adapters.orm import consent_projection as recommender_projection
from spendsense_recommender.bootstrap import SERVICE as RECOMMENDER
from spendsense_shared.aws import Aws
from spendsense_shared.consent import ProjectedConsent, apply_consent_event
from spendsense_shared.db import Database
from spendsense_shared.messaging.catalog import ConsentGranted, ConsentRevoked, new_event
from spendsense_shared.service import build_app
from spendsense_shared.testing.bus import consumer_for, eventually, relay_for

CONSUMERS = (
    (FEATURES, features_projection),
    (RECOMMENDER, recommender_projection),
    (OPERATOR, operator_projection),
)


async def test_consent_flows_from_profile_to_every_projection(migrated, topology, token_verifier, mint):
    profile_settings = await migrated("profile")
    app = build_app(PROFILE, profile_settings)
    app.state.token_verifier = token_verifier
    aws = Aws(profile_settings)
    lookups, workers, databases = [], [], []
    async with aws.client("sns") as sns, aws.client("sqs") as sqs:
        relay = await relay_for(profile_settings, app.state.platform.database, sns)
        workers.append(relay)
        for definition, projection in CONSUMERS:
            settings = await migrated(definition.name)
            database = Database(settings, definition.tables)
            databases.append(database)
            handlers = definition.handlers(definition.platform(settings))
            workers.append(await consumer_for(settings, database, sqs, handlers))
            lookups.append(ProjectedConsent(database, projection))
        tasks = [asyncio.create_task(w.run()) for w in workers]
        try:
            async with httpx.AsyncClient(
                transport=httpx.ASGITransport(app=app), base_url="http://p"
            ) as client:
                headers = {"Authorization": f"Bearer {mint('u-flow')}"}
                assert (
                    await client.post("/api/v1/consent", json={"user_id": "u-flow"}, headers=headers)
                ).is_success

                async def everywhere(status: str) -> bool:
                    return all([await lookup.status("u-flow") == status for lookup in lookups])

                assert await eventually(lambda: everywhere("granted"), timeout=20)
                assert (await client.delete("/api/v1/consent/u-flow", headers=headers)).is_success
                assert await eventually(lambda: everywhere("revoked"), timeout=20)
        finally:
            for worker in workers:
                worker.stop()
            await asyncio.gather(*tasks)
    for database in databases:
        await database.dispose()
    await app.state.platform.close()


async def test_an_older_consent_event_never_overwrites_a_newer_state(migrated):
    settings = await migrated("features")
    database = Database(settings, FEATURES.tables)
    now = datetime.now(UTC)
    revoked = new_event(ConsentRevoked(user_id="u", consent_id="c1", revoked_at=now), user_id="u")
    granted_earlier = new_event(
        ConsentGranted(
            user_id="u",
            consent_id="c1",
            policy_version="1",
            scopes=["analysis"],
            granted_at=now - timedelta(minutes=5),
        ),
        user_id="u",
    ).model_copy(update={"occurred_at": now - timedelta(minutes=5)})
    for event in (revoked, granted_earlier):  # delivered out of order
        async with database.uow() as uow:
            await apply_consent_event(features_projection, uow, event, event_data(event))
            await uow.commit()
    lookup = ProjectedConsent(database, features_projection)
    assert await lookup.status("u") == "revoked"
    assert not await lookup.has_current_consent("u")
    await database.dispose()


def event_data(event):
    from spendsense_shared.messaging.catalog import parse_data

    return parse_data(event)
