"""The SQS consumer runtime against the real emulator and PostgreSQL: idempotency, retries, DLQ,
re-drive, visibility extension and graceful shutdown."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from bus_support.effects import count_effect, effects, messaging, metadata, slow
from sqlalchemy import select

from spendsense_shared.aws import Aws
from spendsense_shared.db import Database
from spendsense_shared.messaging.catalog import ConsentRevoked, new_event
from spendsense_shared.messaging.consumer import Consumer, ConsumerConfig, peek_dead_letters, redrive
from spendsense_shared.messaging.envelope import EventEnvelope
from spendsense_shared.messaging.provision import queue_address
from spendsense_shared.testing.bus import create_schema_tables, drain, eventually

HERE = Path(__file__).resolve().parent


def revoked(user_id: str) -> EventEnvelope:
    from datetime import UTC, datetime

    return new_event(
        ConsentRevoked(user_id=user_id, consent_id="c", revoked_at=datetime.now(UTC)), user_id=user_id
    )


async def send(sqs, url: str, *envelopes: EventEnvelope) -> None:
    for envelope in envelopes:
        await sqs.send_message(
            QueueUrl=url,
            MessageBody=envelope.to_json(),
            MessageAttributes={"type": {"DataType": "String", "StringValue": envelope.type}},
        )


async def applied(database: Database) -> dict[str, int]:
    async with database.engine.connect() as conn:
        rows = (await conn.execute(select(effects.c.user_id, effects.c.times_applied))).all()
    return {r.user_id: r.times_applied for r in rows}


@pytest.fixture
async def features_db(settings_for, infra):
    settings = settings_for("features", bus_max_receives=3, bus_visibility_timeout_s=5)
    await create_schema_tables(infra.database_url, settings.schema_name, metadata)
    database = Database(settings, messaging)
    yield settings, database
    await database.dispose()


def config(**overrides) -> ConsumerConfig:
    values = {
        "service": "features",
        "max_receives": 3,
        "visibility_timeout_s": 5,
        "wait_time_s": 1,
        "concurrency": 4,
        "retry_base_s": 0.2,
        "retry_max_s": 1,
    }
    return ConsumerConfig(**(values | overrides))


async def run_for(consumer: Consumer, until) -> None:
    task = asyncio.create_task(consumer.run())
    try:
        assert await eventually(until, timeout=20), "condition not reached"
    finally:
        consumer.stop()
        await asyncio.wait_for(task, 10)


async def test_the_same_event_delivered_twice_changes_state_once(features_db, topology):
    settings, database = features_db
    aws = Aws(settings)
    event = revoked("u-dup")
    async with aws.client("sqs") as sqs:
        address = await queue_address(aws, topology.queues["features"].name)
        await send(sqs, address.url, event, event, revoked("u-other"))
        consumer = Consumer(
            sqs=sqs,
            queue=address,
            unit_of_work=database.uow,
            handlers={"consent.revoked": count_effect},
            config=config(),
        )

        async def all_handled() -> bool:
            return await applied(database) == {"u-dup": 1, "u-other": 1} and not await drain(sqs, address.url)

        await run_for(consumer, all_handled)
        # And a third delivery, later, after everything settled:
        await send(sqs, address.url, event)
        await consumer.process_batch(
            (await sqs.receive_message(QueueUrl=address.url, WaitTimeSeconds=2, AttributeNames=["All"]))[
                "Messages"
            ]
        )
    assert await applied(database) == {"u-dup": 1, "u-other": 1}


async def test_a_handler_that_keeps_failing_dead_letters_with_the_error_and_redrive_succeeds_after_fix(
    features_db, topology
):
    settings, database = features_db
    aws = Aws(settings)
    fixed = False

    async def flaky(envelope, data, uow) -> None:
        if not fixed:
            raise RuntimeError("projection store rejected the write")
        await count_effect(envelope, data, uow)

    async with aws.client("sqs") as sqs:
        address = await queue_address(aws, topology.queues["features"].name)
        await send(sqs, address.url, revoked("u-poison"))
        consumer = Consumer(
            sqs=sqs,
            queue=address,
            unit_of_work=database.uow,
            handlers={"consent.revoked": flaky},
            config=config(),
        )

        async def dead_lettered() -> list:
            return await peek_dead_letters(sqs, address.dlq_url)

        await run_for(consumer, dead_lettered)
        [letter] = await peek_dead_letters(sqs, address.dlq_url)
        assert letter.error_type == "RuntimeError"
        assert letter.error_message == "projection store rejected the write"
        assert letter.event_type == "consent.revoked"
        assert await applied(database) == {}

        fixed = True
        assert await redrive(sqs, address.dlq_url, address.url) == 1
        consumer = Consumer(
            sqs=sqs,
            queue=address,
            unit_of_work=database.uow,
            handlers={"consent.revoked": flaky},
            config=config(),
        )

        async def handled() -> bool:
            return await applied(database) == {"u-poison": 1}

        await run_for(consumer, handled)
        assert await peek_dead_letters(sqs, address.dlq_url) == []


async def test_a_malformed_message_goes_to_the_dlq_at_once(features_db, topology):
    settings, database = features_db
    aws = Aws(settings)
    async with aws.client("sqs") as sqs:
        address = await queue_address(aws, topology.queues["features"].name)
        await sqs.send_message(
            QueueUrl=address.url, MessageBody=json.dumps({"type": "consent.revoked", "data": 1})
        )
        consumer = Consumer(
            sqs=sqs,
            queue=address,
            unit_of_work=database.uow,
            handlers={"consent.revoked": count_effect},
            config=config(),
        )
        response = await sqs.receive_message(
            QueueUrl=address.url, WaitTimeSeconds=2, AttributeNames=["All"], MessageAttributeNames=["All"]
        )
        await consumer.process_batch(response["Messages"])
        [letter] = await peek_dead_letters(sqs, address.dlq_url)
    assert letter.error_type == "ValidationError"
    assert "data" in letter.error_message


class CountingConsumer(Consumer):
    """Counts every delivery it receives (the inbox would hide a second delivery's effect)."""

    received = 0

    async def process_batch(self, messages) -> None:
        CountingConsumer.received += len(messages)
        await super().process_batch(messages)


async def test_a_long_handler_keeps_its_message_invisible_to_other_consumers(features_db, topology):
    settings, database = features_db
    aws = Aws(settings)
    CountingConsumer.received = 0
    async with aws.client("sqs") as sqs:
        address = await queue_address(aws, topology.queues["features"].name)
        await send(sqs, address.url, revoked("u-long"))
        # The handler takes 4 s with a 2 s visibility timeout: without extension the second consumer
        # would receive the message while the first still works on it.
        cfg = config(visibility_timeout_s=2)
        consumers = [
            CountingConsumer(
                sqs=sqs,
                queue=address,
                unit_of_work=database.uow,
                handlers={"consent.revoked": slow(4)},
                config=cfg,
            )
            for _ in range(2)
        ]
        tasks = [asyncio.create_task(c.run()) for c in consumers]
        assert await eventually(lambda: _equals(applied(database), {"u-long": 1}), timeout=15)
        await asyncio.sleep(2.5)
        for consumer in consumers:
            consumer.stop()
        await asyncio.gather(*tasks)
        received_again = await drain(sqs, address.url)
    assert received_again == []
    assert CountingConsumer.received == 1
    assert await applied(database) == {"u-long": 1}


async def _equals(value, expected) -> bool:
    return await value == expected


async def test_sigterm_mid_batch_loses_nothing(features_db, topology, infra, tmp_path):
    settings, database = features_db
    aws = Aws(settings)
    events = [revoked(f"u{i}") for i in range(12)]
    async with aws.client("sqs") as sqs:
        address = await queue_address(aws, topology.queues["features"].name)
        await send(sqs, address.url, *events)
        env = {
            **os.environ,
            "PYTHONPATH": str(HERE.parent),
            "SPENDSENSE_DATABASE_URL": infra.database_url,
            "SPENDSENSE_DB_SCHEMA": settings.schema_name,
            "SPENDSENSE_AWS_ENDPOINT_URL": infra.aws_endpoint_url,
            "SPENDSENSE_AWS_ACCESS_KEY_ID": "testing",
            "SPENDSENSE_AWS_SECRET_ACCESS_KEY": "testing",
            "SPENDSENSE_ENV": settings.env,
            "SPENDSENSE_BUS_CONCURRENCY": "4",
            "SPENDSENSE_BUS_WAIT_TIME_S": "1",
            "SPENDSENSE_BUS_VISIBILITY_TIMEOUT_S": "30",
            "SLOW_WORKER_MARKER": str(tmp_path / "started"),
        }
        worker = subprocess.Popen(
            [sys.executable, "-m", "bus_support.slow_worker"],
            env=env,
            cwd=HERE.parent,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        try:
            # Wait until the worker is inside a batch (handlers take 1.5 s each), then SIGTERM it.
            await eventually(lambda: _exists(tmp_path / "started"), timeout=20)
            worker.send_signal(signal.SIGTERM)
            output, _ = await asyncio.to_thread(worker.communicate, timeout=30)
        finally:
            if worker.poll() is None:
                worker.kill()
        assert worker.returncode == 0, output.decode()[-2000:]
        done = await applied(database)
        # Everything not done must be visible again at once (released), not stuck invisible.
        remaining = await drain(sqs, address.url, timeout=10)
        remaining_users = sorted(EventEnvelope.from_json(m["Body"]).user_id for m in remaining)
    assert 0 < len(done) < len(events), "SIGTERM should have landed mid-stream"
    assert all(n == 1 for n in done.values())
    assert sorted([*done, *remaining_users]) == sorted(e.user_id for e in events)


async def _exists(path: Path) -> bool:
    return path.exists()
