"""Consent granted in profile reaches the features, recommender and operator projections through the
real outbox, SNS and SQS; revocation follows; an older event never overwrites a newer state."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

from spendsense_features.bootstrap import SERVICE as FEATURES
from spendsense_operator.adapters.unit_of_work import SqlOperatorUnitOfWork
from spendsense_operator.bootstrap import SERVICE as OPERATOR
from spendsense_profile.bootstrap import SERVICE as PROFILE
from spendsense_recommender.bootstrap import SERVICE as RECOMMENDER
from spendsense_shared.aws import Aws
from spendsense_shared.consent import ProjectedConsent, apply_consent_event
from spendsense_shared.messaging.catalog import ConsentGranted, ConsentRevoked, new_event, parse_data
from spendsense_shared.testing.bus import consumer_for, eventually, relay_for

CONSUMERS = (FEATURES, RECOMMENDER, OPERATOR)


async def test_consent_flows_from_profile_to_every_projection(service_client, migrated, topology):
    profile = await service_client(PROFILE)
    aws = Aws(profile.platform.settings)
    lookups, workers, platforms = [], [], []
    async with aws.client("sns") as sns, aws.client("sqs") as sqs:
        workers.append(await relay_for(profile.platform.settings, profile.platform.database, sns))
        for definition in CONSUMERS:
            platform = definition.platform(await migrated(definition))
            platforms.append(platform)
            wiring = definition.bootstrap(platform)
            workers.append(
                await consumer_for(
                    platform.settings, platform.database, sqs, wiring.event_handlers, wiring.unit_of_work
                )
            )
            lookups.append(wiring.consent)
        tasks = [asyncio.create_task(w.run()) for w in workers]
        try:
            me = profile.as_("u-flow")
            assert (await profile.post("/api/v1/consent", json={"user_id": "u-flow"}, headers=me)).is_success

            async def everywhere(granted: bool) -> bool:
                return all([await lookup.has_current_consent("u-flow") == granted for lookup in lookups])

            assert await eventually(lambda: everywhere(True), timeout=20)
            assert (await profile.delete("/api/v1/consent/u-flow", headers=me)).is_success
            assert await eventually(lambda: everywhere(False), timeout=20)
        finally:
            for worker in workers:
                worker.stop()
            await asyncio.gather(*tasks)
    for platform in platforms:
        await platform.close()


async def test_an_older_consent_event_never_overwrites_a_newer_state(migrated):
    platform = OPERATOR.platform(await migrated(OPERATOR))
    unit_of_work = platform.database.uow_factory(SqlOperatorUnitOfWork)
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
        async with unit_of_work() as uow:
            await apply_consent_event(uow, event, parse_data(event))
            await uow.commit()
    assert not await ProjectedConsent(unit_of_work).has_current_consent("u")
    async with unit_of_work() as uow:  # a newer grant does move it forward
        later = new_event(
            ConsentGranted(
                user_id="u", consent_id="c2", policy_version="1", scopes=["analysis"], granted_at=now
            ),
            user_id="u",
        ).model_copy(update={"occurred_at": now + timedelta(seconds=1)})
        await apply_consent_event(uow, later, parse_data(later))
        await uow.commit()
    assert await ProjectedConsent(unit_of_work).has_current_consent("u")
    await platform.close()
