"""The consent projection in SQL: its table (declared once, for the ORM and the migrations) and its
repository."""

from __future__ import annotations

from datetime import datetime

from alembic import op
from sqlalchemy import Column, DateTime, MetaData, String, Table, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from spendsense_shared.consent import ConsentProjection, ConsentStatus

TABLE_NAME = "consent_projection"


def _columns() -> list[Column[object]]:
    return [
        Column("user_id", String(128), primary_key=True),
        Column("consent_id", String(64), nullable=False),
        Column("status", String(16), nullable=False),  # granted | revoked
        Column("as_of", DateTime(timezone=True), nullable=False),  # occurred_at of the applied event
    ]


def add_consent_projection(metadata: MetaData) -> Table:
    return Table(TABLE_NAME, metadata, *_columns())


def create_consent_projection_table() -> None:
    """For the migrations of the services that keep a projection."""
    op.create_table(TABLE_NAME, *_columns())


class SqlConsentProjection(ConsentProjection):
    def __init__(self, session: AsyncSession, table: Table):
        self.session = session
        self.table = table

    async def apply(self, user_id: str, consent_id: str, status: ConsentStatus, as_of: datetime) -> None:
        stmt = insert(self.table).values(user_id=user_id, consent_id=consent_id, status=status, as_of=as_of)
        stmt = stmt.on_conflict_do_update(
            index_elements=[self.table.c.user_id],
            set_={"consent_id": consent_id, "status": status, "as_of": as_of},
            where=self.table.c.as_of <= as_of,
        )
        await self.session.execute(stmt)

    async def granted(self, user_ids: list[str]) -> set[str]:
        rows = await self.session.execute(
            select(self.table.c.user_id).where(
                self.table.c.user_id.in_(user_ids), self.table.c.status == "granted"
            )
        )
        return {r.user_id for r in rows}
