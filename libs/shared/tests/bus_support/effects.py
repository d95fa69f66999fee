"""A test schema: the messaging tables plus an ``effects`` table handlers write to (state that must
change exactly once per event), and handlers that succeed, fail, or take long."""

from __future__ import annotations

import asyncio

from sqlalchemy import Column, Integer, MetaData, String, Table
from sqlalchemy.dialects.postgresql import insert

from spendsense_shared.db import UnitOfWork
from spendsense_shared.messaging.catalog import EventData
from spendsense_shared.messaging.envelope import EventEnvelope
from spendsense_shared.messaging.tables import add_messaging_tables

metadata = MetaData()
messaging = add_messaging_tables(metadata)
effects = Table(
    "effects",
    metadata,
    Column("user_id", String, primary_key=True),
    Column("times_applied", Integer, nullable=False),
)


async def count_effect(envelope: EventEnvelope, data: EventData, uow: UnitOfWork) -> None:
    stmt = insert(effects).values(user_id=envelope.user_id, times_applied=1)
    stmt = stmt.on_conflict_do_update(
        index_elements=[effects.c.user_id], set_={"times_applied": effects.c.times_applied + 1}
    )
    await uow.session.execute(stmt)


def slow(seconds: float):  # type: ignore[no-untyped-def]
    async def handler(envelope: EventEnvelope, data: EventData, uow: UnitOfWork) -> None:
        await asyncio.sleep(seconds)
        await count_effect(envelope, data, uow)

    return handler
