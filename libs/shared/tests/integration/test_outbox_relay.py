"""The transactional outbox and its relay, against real PostgreSQL and the AWS emulator."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import textwrap
from collections import Counter
from datetime import UTC, datetime

from sqlalchemy import func, select

from spendsense_auth.adapters.orm import messaging as auth_messaging
from spendsense_profile.adapters.orm import messaging
from spendsense_shared.aws import Aws
from spendsense_shared.db import Database, asyncpg_dsn
from spendsense_shared.messaging.catalog import ConsentGranted, UserRegistered, new_event
from spendsense_shared.messaging.envelope import EventEnvelope
from spendsense_shared.messaging.provision import queue_address, topic_arn
from spendsense_shared.messaging.relay import OutboxRelay
from spendsense_shared.testing.bus import drain, envelopes

CONSENT_CONSUMERS = ("features", "recommender", "operator")


def consent_event(user_id: str) -> EventEnvelope:
    return new_event(
        ConsentGranted(
            user_id=user_id,
            consent_id=f"c-{user_id}",
            policy_version="2026-01",
            scopes=["analysis"],
            granted_at=datetime.now(UTC),
        ),
        user_id=user_id,
    )


async def make_relay(settings, database: Database, sns, topology, producer: str = "profile") -> OutboxRelay:
    aws = Aws(settings)
    return OutboxRelay(
        engine=database.engine,
        tables=database.tables,
        schema=database.schema,
        sns=sns,
        topic_arn=await topic_arn(aws, topology.topics[producer]),
        service=producer,
        listen_dsn=asyncpg_dsn(settings.database_url.get_secret_value()),
        batch_size=50,
    )


async def test_event_committed_then_writer_killed_is_delivered_to_every_subscribed_queue(migrated, topology):
    settings = await migrated("profile")
    # A separate process commits the event and is killed (SIGKILL) before any relay could run.
    script = textwrap.dedent(f"""
        import asyncio, os, signal
        from datetime import UTC, datetime
        from spendsense_shared.db import Database
        from spendsense_shared.settings import ServiceSettings
        from spendsense_shared.messaging.catalog import ConsentGranted, new_event
        from spendsense_profile.adapters.orm import messaging

        async def main():
            settings = ServiceSettings(service_name="profile", database_url={settings.database_url.get_secret_value()!r},
                                       db_schema={settings.schema_name!r})
            db = Database(settings, messaging)
            async with db.uow() as uow:
                uow.publish(new_event(ConsentGranted(user_id="u-killed", consent_id="c1", policy_version="1",
                                                     scopes=["analysis"], granted_at=datetime.now(UTC)), user_id="u-killed"))
                await uow.commit()
            os.kill(os.getpid(), signal.SIGKILL)

        asyncio.run(main())
    """)
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, timeout=60)
    assert result.returncode == -9, result.stderr.decode()

    database = Database(settings, messaging)
    aws = Aws(settings)
    async with aws.client("sns") as sns, aws.client("sqs") as sqs:
        relay = await make_relay(settings, database, sns, topology)
        assert await relay.publish_pending() == 1
        for consumer in CONSENT_CONSUMERS:
            address = await queue_address(aws, topology.queues[consumer].name)
            received = envelopes(await drain(sqs, address.url, expect=1))
            assert [e.user_id for e in received] == ["u-killed"], consumer
        # Not subscribed to consent events: the filter policy keeps them out.
        auth = await queue_address(aws, topology.queues["auth"].name)
        assert await drain(sqs, auth.url) == []
    await database.dispose()


async def test_event_of_a_rolled_back_transaction_is_never_published(migrated, topology):
    settings = await migrated("profile")
    database = Database(settings, messaging)
    async with database.uow() as uow:
        uow.publish(consent_event("u-rolled-back"))
        await uow.rollback()
    async with database.uow() as uow:
        uow.publish(consent_event("u-exception"))
        # leaving the block without commit (as an exception would) discards the event

    aws = Aws(settings)
    async with aws.client("sns") as sns, aws.client("sqs") as sqs:
        relay = await make_relay(settings, database, sns, topology)
        assert await relay.publish_pending() == 0
        address = await queue_address(aws, topology.queues["features"].name)
        assert await drain(sqs, address.url) == []
    async with database.engine.connect() as conn:
        assert (await conn.execute(select(func.count()).select_from(messaging.outbox))).scalar_one() == 0
    await database.dispose()


def registered_event(user_id: str) -> EventEnvelope:
    return new_event(
        UserRegistered(user_id=user_id, roles=["user"], registered_via="password"), user_id=user_id
    )


async def test_two_relays_publish_each_of_1000_events_exactly_once(migrated, topology):
    # user.registered has one subscriber (profile), which this test drains while the relays run.
    settings = await migrated("auth")
    database = Database(settings, auth_messaging)
    events = [registered_event(f"u{i}") for i in range(1000)]
    for start in range(0, 1000, 100):
        async with database.uow() as uow:
            for event in events[start : start + 100]:
                uow.publish(event)
            await uow.commit()

    aws = Aws(settings)
    other = Database(settings, auth_messaging)  # a second process's own connection pool
    async with aws.client("sns") as sns_a, aws.client("sns") as sns_b, aws.client("sqs") as sqs:
        relays = [
            await make_relay(settings, db, sns, topology, producer="auth")
            for db, sns in ((database, sns_a), (other, sns_b))
        ]
        tasks = [asyncio.create_task(relay.run()) for relay in relays]
        address = await queue_address(aws, topology.queues["profile"].name)
        try:
            # A correctness test, not a timing one: the emulator takes about a minute on a quiet 2-core machine.
            received = envelopes(await drain(sqs, address.url, expect=1000, timeout=300))
        finally:
            for relay in relays:
                relay.stop()
            await asyncio.gather(*tasks)
        assert await relays[0].pending_count() == 0
    counts = Counter(e.id for e in received)
    assert len(counts) == 1000
    assert max(counts.values()) == 1, "an event was published twice"
    assert set(counts) == {e.id for e in events}
    await other.dispose()
    await database.dispose()


async def test_relay_wakes_on_notify_without_waiting_for_the_poll(migrated, topology):
    settings = await migrated("profile")
    database = Database(settings, messaging)
    aws = Aws(settings)
    async with aws.client("sns") as sns, aws.client("sqs") as sqs:
        relay = await make_relay(settings, database, sns, topology)
        relay.poll_interval_s = 30  # only NOTIFY can wake it in time
        task = asyncio.create_task(relay.run())
        await asyncio.sleep(0.5)
        async with database.uow() as uow:
            uow.publish(consent_event("u-notify"))
            await uow.commit()
        address = await queue_address(aws, topology.queues["features"].name)
        received = envelopes(await drain(sqs, address.url, expect=1, timeout=8))
        relay.stop()
        await task
    assert [e.user_id for e in received] == ["u-notify"]
    await database.dispose()
