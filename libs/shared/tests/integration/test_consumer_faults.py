"""The consumer under infrastructure faults, against the real emulator and PostgreSQL: an unreachable
database is retried in place without spending deliveries (nothing dead-lettered), and an SQS endpoint
that fails while deleting never ends the consumer (the message comes back; the inbox discards it)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from bus_support.effects import count_effect, effects, messaging, metadata
from sqlalchemy import select

from spendsense_shared.aws import Aws
from spendsense_shared.db import Database
from spendsense_shared.embedded.servers import free_port
from spendsense_shared.messaging.catalog import ConsentRevoked, new_event
from spendsense_shared.messaging.consumer import Consumer, ConsumerConfig, peek_dead_letters
from spendsense_shared.messaging.envelope import EventEnvelope
from spendsense_shared.messaging.provision import queue_address
from spendsense_shared.testing.bus import create_schema_tables, drain, eventually


def revoked(user_id: str) -> EventEnvelope:
    from datetime import UTC, datetime

    return new_event(
        ConsentRevoked(user_id=user_id, consent_id="c", revoked_at=datetime.now(UTC)), user_id=user_id
    )


def config() -> ConsumerConfig:
    return ConsumerConfig(
        service="features",
        max_receives=2,
        visibility_timeout_s=4,
        wait_time_s=1,
        concurrency=2,
        retry_base_s=0.2,
        retry_max_s=1,
        transient_first_s=0.05,
        transient_max_s=0.3,
    )


@pytest.fixture
async def features_db(settings_for, infra):
    settings = settings_for("features")
    await create_schema_tables(infra.database_url, settings.schema_name, metadata)
    database = Database(settings, messaging)
    yield settings, database
    await database.dispose()


async def applied(database: Database) -> dict[str, int]:
    async with database.engine.connect() as conn:
        rows = (await conn.execute(select(effects.c.user_id, effects.c.times_applied))).all()
    return {r.user_id: r.times_applied for r in rows}


async def send(sqs: Any, url: str, envelope: EventEnvelope) -> None:
    await sqs.send_message(
        QueueUrl=url,
        MessageBody=envelope.to_json(),
        MessageAttributes={"type": {"DataType": "String", "StringValue": envelope.type}},
    )


class CountingConsumer(Consumer):
    received = 0

    async def process_batch(self, messages) -> None:  # type: ignore[no-untyped-def]
        CountingConsumer.received += len(messages)
        await super().process_batch(messages)


async def test_a_database_refusing_connections_is_retried_in_place_and_nothing_is_dead_lettered(
    features_db, settings_for, topology
):
    settings, database = features_db
    # A database nobody listens on: every attempt gets a real "connection refused" from the driver.
    unreachable = Database(
        settings_for(
            "features",
            database_url=f"postgresql+asyncpg://postgres@127.0.0.1:{free_port()}/spendsense",
            db_schema=settings.schema_name,
        ),
        messaging,
    )
    attempts = 0

    def unit_of_work():  # type: ignore[no-untyped-def]
        nonlocal attempts
        attempts += 1
        # More failed attempts than the delivery budget (2): none of them may count as a delivery.
        return (unreachable if attempts <= 6 else database).uow()

    aws = Aws(settings)
    CountingConsumer.received = 0
    async with aws.client("sqs") as sqs:
        address = await queue_address(aws, topology.queues["features"].name)
        await send(sqs, address.url, revoked("u-outage"))
        consumer = CountingConsumer(
            sqs=sqs,
            queue=address,
            unit_of_work=unit_of_work,
            handlers={"consent.revoked": count_effect},
            config=config(),
        )
        task = asyncio.create_task(consumer.run())
        try:
            assert await eventually(lambda: _equals(applied(database), {"u-outage": 1}), timeout=30)
        finally:
            consumer.stop()
            await asyncio.wait_for(task, 15)
        left = await drain(sqs, address.url, timeout=2)
        dead = await peek_dead_letters(sqs, address.dlq_url)
    await unreachable.dispose()
    assert attempts == 7
    assert CountingConsumer.received == 1  # one delivery: the retries happened in place
    assert left == []
    assert dead == []


class DeleteFailsOnce:
    """The real SQS client, except that the first batch delete goes to an endpoint nobody listens on
    (botocore's own EndpointConnectionError)."""

    def __init__(self, sqs: Any, dead_sqs: Any):
        self._sqs = sqs
        self._dead = dead_sqs
        self.failed = 0

    def __getattr__(self, name: str) -> Any:
        return getattr(self._sqs, name)

    async def delete_message_batch(self, **kwargs: Any) -> Any:
        if not self.failed:
            self.failed += 1
            return await self._dead.delete_message_batch(**kwargs)
        return await self._sqs.delete_message_batch(**kwargs)


async def test_a_failing_delete_never_ends_the_consumer_and_the_redelivery_is_a_discarded_duplicate(
    features_db, settings_for, topology
):
    settings, database = features_db
    aws = Aws(settings)
    nowhere = Aws(settings_for("features", aws_endpoint_url=f"http://127.0.0.1:{free_port()}"))
    async with aws.client("sqs") as sqs, nowhere.client("sqs") as dead_sqs:
        address = await queue_address(aws, topology.queues["features"].name)
        await send(sqs, address.url, revoked("u-delete"))
        flaky = DeleteFailsOnce(sqs, dead_sqs)
        cfg = config()
        consumer = Consumer(
            sqs=flaky,
            queue=address,
            unit_of_work=database.uow,
            handlers={"consent.revoked": count_effect},
            config=ConsumerConfig(**{**cfg.__dict__, "transient_max_s": 0.1}),
        )
        task = asyncio.create_task(consumer.run())
        try:
            assert await eventually(lambda: _equals(applied(database), {"u-delete": 1}), timeout=20)
            # The undeleted message comes back after its visibility timeout and is deleted as a duplicate.
            assert await eventually(lambda: _queue_empty(sqs, address.url), timeout=30)
            assert not task.done(), "the consumer ended"
        finally:
            consumer.stop()
            await asyncio.wait_for(task, 15)
        dead = await peek_dead_letters(sqs, address.dlq_url)
    assert flaky.failed == 1
    assert await applied(database) == {"u-delete": 1}
    assert dead == []


async def _equals(value: Any, expected: Any) -> bool:
    return bool(await value == expected)


async def _queue_empty(sqs: Any, url: str) -> bool:
    attributes = (
        await sqs.get_queue_attributes(
            QueueUrl=url,
            AttributeNames=["ApproximateNumberOfMessages", "ApproximateNumberOfMessagesNotVisible"],
        )
    )["Attributes"]
    return attributes == {"ApproximateNumberOfMessages": "0", "ApproximateNumberOfMessagesNotVisible": "0"}
