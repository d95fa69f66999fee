"""The relay under faults, against real PostgreSQL and the AWS emulator: on stop it publishes what was
committed before (nothing waits for the next start); a LISTEN connection PostgreSQL dropped is opened
again and the relay is woken by NOTIFY again."""

from __future__ import annotations

import asyncio

import asyncpg

from spendsense_profile.adapters.orm import messaging
from spendsense_shared.aws import Aws
from spendsense_shared.db import Database, asyncpg_dsn
from spendsense_shared.messaging.provision import queue_address
from spendsense_shared.testing.bus import drain, envelopes
from spendsense_shared.testing.fakes import load_beside

relay_tests = load_beside(__file__, "test_outbox_relay.py", "spendsense_shared_tests_outbox_relay")


async def test_on_stop_the_relay_publishes_everything_committed_before(migrated, topology):
    settings = await migrated("profile")
    database = Database(settings, messaging)
    aws = Aws(settings)
    async with aws.client("sns") as sns, aws.client("sqs") as sqs:
        relay = await relay_tests.make_relay(settings, database, sns, topology)
        relay.listen_dsn = None  # no NOTIFY, and a poll far away: only the stop can publish in time
        relay.poll_interval_s = 600
        task = asyncio.create_task(relay.run())
        await asyncio.sleep(0.5)  # it has looked once, found nothing, and waits
        async with database.uow() as uow:
            for n in range(3):
                uow.publish(relay_tests.consent_event(f"u-stop-{n}"))
            await uow.commit()

        relay.stop()
        await asyncio.wait_for(task, 15)

        assert await relay.pending_count() == 0
        address = await queue_address(aws, topology.queues["features"].name)
        received = envelopes(await drain(sqs, address.url, expect=3, timeout=8))
    assert sorted(e.user_id for e in received) == ["u-stop-0", "u-stop-1", "u-stop-2"]
    await database.dispose()


async def test_a_dropped_listen_connection_is_opened_again(migrated, topology):
    settings = await migrated("profile")
    database = Database(settings, messaging)
    aws = Aws(settings)
    dsn = asyncpg_dsn(settings.database_url.get_secret_value())
    async with aws.client("sns") as sns, aws.client("sqs") as sqs:
        relay = await relay_tests.make_relay(settings, database, sns, topology)
        relay.poll_interval_s = 60  # only NOTIFY can wake it in time
        task = asyncio.create_task(relay.run())
        await asyncio.sleep(0.5)
        # PostgreSQL drops the relay's LISTEN connection (as a restart does).
        admin = await asyncpg.connect(dsn)
        channel = f"outbox_{database.schema}"
        dropped = await admin.fetchval(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
            "WHERE query ILIKE $1 AND pid <> pg_backend_pid()",
            f"%LISTEN%{channel}%",
        )
        await admin.close()
        assert dropped == 1
        await asyncio.sleep(1.5)  # it listens again (after 1 s at most)
        async with database.uow() as uow:
            uow.publish(relay_tests.consent_event("u-relisten"))
            await uow.commit()
        address = await queue_address(aws, topology.queues["features"].name)
        received = envelopes(await drain(sqs, address.url, expect=1, timeout=8))
        relay.stop()
        await task
    assert [e.user_id for e in received] == ["u-relisten"]
    await database.dispose()
