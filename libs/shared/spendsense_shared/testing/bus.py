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
