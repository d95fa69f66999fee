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
