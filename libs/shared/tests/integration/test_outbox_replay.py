"""Outbox events sent again (a restore, or the emulator restarted and its queues' messages lost), against
real PostgreSQL and the AWS emulator: what was published within the window is published again with its
own id (the inboxes recognise it), woken by NOTIFY; what was published before the window is not."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import asyncpg
from sqlalchemy import update

from spendsense_profile.adapters.orm import messaging
from spendsense_shared.aws import Aws
from spendsense_shared.db import Database, asyncpg_dsn
from spendsense_shared.messaging.outbox_replay import outbox_schemas, resend_published
from spendsense_shared.messaging.provision import queue_address
from spendsense_shared.testing.bus import drain, envelopes
from spendsense_shared.testing.fakes import load_beside

relay_tests = load_beside(__file__, "test_outbox_relay.py", "spendsense_shared_tests_outbox_relay")


async def test_events_published_within_the_window_are_sent_again_with_their_ids(migrated, topology):
    settings = await migrated("profile")
    database = Database(settings, messaging)
    old, recent = relay_tests.consent_event("u-old"), relay_tests.consent_event("u-recent")
    async with database.uow() as uow:
        uow.publish(old)
        uow.publish(recent)
        await uow.commit()
    aws = Aws(settings)
    async with aws.client("sns") as sns, aws.client("sqs") as sqs:
        relay = await relay_tests.make_relay(settings, database, sns, topology)
        assert await relay.publish_pending() == 2
        address = await queue_address(aws, topology.queues["features"].name)
        assert len(await drain(sqs, address.url, expect=2)) == 2  # then lost with the emulator
        outbox = messaging.outbox
        async with database.engine.begin() as conn:  # published long before the window
            await conn.execute(
                update(outbox)
                .where(outbox.c.event_id == old.id)
                .values(published_at=datetime.now(UTC) - timedelta(hours=1))
            )

        relay.poll_interval_s = 30  # only the NOTIFY can wake it in time
        task = asyncio.create_task(relay.run())
        await asyncio.sleep(0.5)
        conn = await asyncpg.connect(asyncpg_dsn(settings.database_url.get_secret_value()))
        try:
            assert database.schema in await outbox_schemas(conn)
            since = datetime.now(UTC) - timedelta(minutes=15)
            assert await resend_published(conn, [database.schema], since) == {database.schema: 1}
        finally:
            await conn.close()
        received = envelopes(await drain(sqs, address.url, expect=1, timeout=8))
        relay.stop()
        await task
    assert [e.id for e in received] == [recent.id]
    assert await relay.pending_count() == 0
    await database.dispose()


async def test_with_the_consumers_named_only_what_one_of_them_has_not_handled_is_sent_again(migrated):
    """The supervisor names the consumers (schema → the types its inbox records): an event every one of
    them recorded was handled and is not sent again; one a consumer has not recorded is, and so is every
    event of a type whose consumer has no inbox here. Events nobody consumes are not sent again."""
    producer = await migrated("profile")
    features, operator = await migrated("features"), await migrated("operator")
    database = Database(producer, messaging)
    handled, half, unhandled = (relay_tests.consent_event(u) for u in ("u-both", "u-half", "u-none"))
    async with database.uow() as uow:
        for event in (handled, half, unhandled):
            uow.publish(event)
        await uow.commit()
    conn = await asyncpg.connect(asyncpg_dsn(producer.database_url.get_secret_value()))
    try:
        await conn.execute(f'UPDATE "{database.schema}".outbox SET published_at = now()')  # noqa: S608
        for consumer, events in ((features, (handled, half)), (operator, (handled,))):
            for event in events:
                await conn.execute(
                    f'INSERT INTO "{consumer.schema_name}".inbox (event_id, event_type) VALUES ($1, $2)',  # noqa: S608
                    event.id,
                    event.type,
                )
        since = datetime.now(UTC) - timedelta(minutes=15)
        consumers = {features.schema_name: ["consent.granted"], operator.schema_name: ["consent.granted"]}
        assert await resend_published(conn, [database.schema], since, consumers=consumers) == {
            database.schema: 2
        }
        outbox = f'"{database.schema}".outbox'
        pending = await conn.fetch(f"SELECT event_id FROM {outbox} WHERE published_at IS NULL")  # noqa: S608
        assert {r["event_id"] for r in pending} == {half.id, unhandled.id}

        await conn.execute(f"UPDATE {outbox} SET published_at = now()")  # noqa: S608
        without_inbox = {"nowhere": ["consent.granted"]}  # a consumer whose inbox is not in this database
        assert await resend_published(conn, [database.schema], since, consumers=without_inbox) == {
            database.schema: 3
        }
        await conn.execute(f"UPDATE {outbox} SET published_at = now()")  # noqa: S608
        nobody = {features.schema_name: ["upload.ingested"]}  # nobody consumes consent.granted
        assert await resend_published(conn, [database.schema], since, consumers=nobody) == {
            database.schema: 0
        }
    finally:
        await conn.close()
    await database.dispose()
