"""Helpers for tests that read queues and set up schemas directly."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from sqlalchemy import MetaData, text
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool

from spendsense_shared.messaging.envelope import EventEnvelope


async def drain(
    sqs: Any, queue_url: str, *, expect: int | None = None, timeout: float = 15
) -> list[dict[str, Any]]:
    """Receive and delete until the queue is empty (or ``expect`` messages arrived)."""
    messages: list[dict[str, Any]] = []
    deadline = time.monotonic() + timeout
    empty_polls = 0
    while time.monotonic() < deadline:
        response = await sqs.receive_message(
            QueueUrl=queue_url,
            MaxNumberOfMessages=10,
            WaitTimeSeconds=1,
            AttributeNames=["All"],
            MessageAttributeNames=["All"],
        )
        batch = response.get("Messages", [])
        if batch:
            empty_polls = 0
            messages += batch
            await sqs.delete_message_batch(
                QueueUrl=queue_url,
                Entries=[{"Id": str(i), "ReceiptHandle": m["ReceiptHandle"]} for i, m in enumerate(batch)],
            )
        else:
            empty_polls += 1
        if expect is not None and len(messages) >= expect and empty_polls >= 1:
            break
        if expect is None and empty_polls >= 2:
            break
    return messages


def envelopes(messages: list[dict[str, Any]]) -> list[EventEnvelope]:
    return [EventEnvelope.from_json(m["Body"]) for m in messages]


async def create_schema_tables(database_url: str, schema: str, metadata: MetaData) -> None:
    engine = create_async_engine(database_url, poolclass=NullPool)
    async with engine.begin() as conn:
        await conn.execute(text(f'CREATE SCHEMA IF NOT EXISTS "{schema}"'))
        await conn.execute(text(f'SET search_path TO "{schema}"'))
        await conn.run_sync(metadata.create_all)
    await engine.dispose()


async def eventually(check: Any, timeout: float = 10, interval: float = 0.1) -> Any:
    """Await ``check()`` until it returns something truthy."""
    deadline = time.monotonic() + timeout
    while True:
        result = await check()
        if result or time.monotonic() > deadline:
            return result
        await asyncio.sleep(interval)


async def relay_for(settings: Any, database: Any, sns: Any) -> Any:
    """The service's real outbox relay, publishing to this test's topic."""
    from spendsense_shared.aws import Aws
    from spendsense_shared.db import asyncpg_dsn
    from spendsense_shared.messaging.provision import topic_arn
    from spendsense_shared.messaging.relay import OutboxRelay
    from spendsense_shared.messaging.topology import build_topology

    topology = build_topology(settings.env)
    return OutboxRelay(
        engine=database.engine,
        tables=database.tables,
        schema=database.schema,
        sns=sns,
        topic_arn=await topic_arn(Aws(settings), topology.topics[settings.service_name]),
        service=settings.service_name,
        listen_dsn=asyncpg_dsn(settings.database_url.get_secret_value()),
        poll_interval_s=0.2,
    )


async def consumer_for(
    settings: Any, database: Any, sqs: Any, handlers: Any, unit_of_work: Any = None
) -> Any:
    """The service's real queue consumer for this test's queue (plain units of work unless given)."""
    from spendsense_shared.aws import Aws
    from spendsense_shared.messaging.consumer import Consumer
    from spendsense_shared.messaging.provision import queue_address
    from spendsense_shared.messaging.topology import build_topology
    from spendsense_shared.worker import consumer_config

    topology = build_topology(settings.env)
    address = await queue_address(Aws(settings), topology.queues[settings.service_name].name)
    return Consumer(
        sqs=sqs,
        queue=address,
        unit_of_work=unit_of_work or database.uow,
        handlers=handlers,
        config=consumer_config(settings),
    )
