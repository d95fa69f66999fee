"""Each consuming service's own projection of consent events, and the lookup its routes use.

Events may arrive out of order (SQS is not FIFO), so a projection row only moves forward in time:
an event older than what the row already reflects is ignored.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy import Column, DateTime, MetaData, String, Table, select
from sqlalchemy.dialects.postgresql import insert

from spendsense_shared.db import Database, UnitOfWork
from spendsense_shared.messaging.catalog import ConsentGranted, ConsentRevoked, EventData
from spendsense_shared.messaging.consumer import Handler
from spendsense_shared.messaging.envelope import EventEnvelope


def add_consent_projection(metadata: MetaData) -> Table:
    return Table(
        "consent_projection",
        metadata,
        Column("user_id", String(128), primary_key=True),
        Column("consent_id", String(64), nullable=False),
        Column("status", String(16), nullable=False),  # granted | revoked
        Column("as_of", DateTime(timezone=True), nullable=False),  # occurred_at of the applied event
    )


def create_consent_projection_table() -> None:
    """For the migrations of the services that keep a projection."""
    op.create_table(
        "consent_projection",
        sa.Column("user_id", sa.String(128), primary_key=True),
        sa.Column("consent_id", sa.String(64), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("as_of", sa.DateTime(timezone=True), nullable=False),
    )


async def apply_consent_event(
    table: Table, uow: UnitOfWork, envelope: EventEnvelope, data: EventData
) -> None:
    if isinstance(data, ConsentGranted):
        user_id, consent_id, status = data.user_id, data.consent_id, "granted"
    elif isinstance(data, ConsentRevoked):
        user_id, consent_id, status = data.user_id, data.consent_id, "revoked"
    else:
        raise TypeError(f"not a consent event: {envelope.type}")
    stmt = insert(table).values(
        user_id=user_id, consent_id=consent_id, status=status, as_of=envelope.occurred_at
    )
    stmt = stmt.on_conflict_do_update(
        index_elements=[table.c.user_id],
        set_={"consent_id": consent_id, "status": status, "as_of": envelope.occurred_at},
        where=table.c.as_of <= envelope.occurred_at,
    )
    await uow.session.execute(stmt)


def consent_handlers(table: Table) -> dict[str, Handler]:
    async def handle(envelope: EventEnvelope, data: EventData, uow: UnitOfWork) -> None:
        await apply_consent_event(table, uow, envelope, data)

    return {"consent.granted": handle, "consent.revoked": handle}


class ProjectedConsent:
    """``ConsentLookup`` over a service's own projection."""

    def __init__(self, database: Database, table: Table):
        self.database = database
        self.table = table

    async def has_current_consent(self, user_id: str) -> bool:
        return await self.status(user_id) == "granted"

    async def status(self, user_id: str) -> str | None:
        async with self.database.engine.connect() as conn:
            row = (
                await conn.execute(select(self.table.c.status).where(self.table.c.user_id == user_id))
            ).first()
        return None if row is None else str(row.status)
