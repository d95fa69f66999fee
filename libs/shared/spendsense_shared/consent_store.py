"""The consent projection in SQL: its table (declared once, for the ORM and the migrations) and its
repository."""

from __future__ import annotations

from datetime import datetime

from alembic import op
from sqlalchemy import Column, DateTime, MetaData, String, Table, delete, or_, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from spendsense_shared.consent import (
    ConsentProjection,
    ConsentStatus,
    ProjectedConsentRow,
    forget_standing,
    merged_consent,
)
from spendsense_shared.erasure import pseudonym
from spendsense_shared.security import ConsentStanding

TABLE_NAME = "consent_projection"
ERASED = "erased"  # the consent id of an erased user's tombstone


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
        forget_standing(user_id)
        if await self.is_erased(user_id):
            return  # a late or redelivered event of an erased user: never recreate their row
        stmt = insert(self.table).values(user_id=user_id, consent_id=consent_id, status=status, as_of=as_of)
        stmt = stmt.on_conflict_do_update(
            index_elements=[self.table.c.user_id],
            set_={"consent_id": consent_id, "status": status, "as_of": as_of},
            where=self.table.c.as_of <= as_of,
        )
        await self.session.execute(stmt)

    async def is_erased(self, user_id: str) -> bool:
        found = await self.session.execute(
            select(self.table.c.user_id).where(self.table.c.user_id == pseudonym(user_id))
        )
        return found.first() is not None

    async def standing(self, user_id: str) -> ConsentStanding:
        erased_key = pseudonym(user_id)
        rows = await self.session.execute(
            # Two plain parameters, not IN (a list is an "expanding" parameter: SQLAlchemy rewrites the
            # statement on every execution, on every access check of every service)
            select(self.table.c.user_id, self.table.c.status).where(
                or_(self.table.c.user_id == user_id, self.table.c.user_id == erased_key)
            )
        )
        status = {r.user_id: r.status for r in rows}
        erased = erased_key in status
        return ConsentStanding(erased=erased, current=not erased and status.get(user_id) == "granted")

    async def erase(self, user_id: str, as_of: datetime) -> None:
        forget_standing(user_id)
        await self.session.execute(delete(self.table).where(self.table.c.user_id == user_id))
        await self.session.execute(
            insert(self.table)
            .values(user_id=pseudonym(user_id), consent_id=ERASED, status="revoked", as_of=as_of)
            .on_conflict_do_nothing(index_elements=[self.table.c.user_id])
        )

    async def granted(self, user_ids: list[str]) -> set[str]:
        rows = await self.session.execute(
            select(self.table.c.user_id).where(
                self.table.c.user_id.in_(user_ids), self.table.c.status == "granted"
            )
        )
        return {r.user_id for r in rows}

    async def merge(self, source_user_id: str, target_user_id: str) -> None:
        forget_standing(source_user_id)
        forget_standing(target_user_id)
        rows = {
            r.user_id: ProjectedConsentRow(r.consent_id, r.status, r.as_of)
            for r in await self.session.execute(
                select(self.table)
                .where(self.table.c.user_id.in_([source_user_id, target_user_id]))
                .order_by(self.table.c.user_id)  # one lock order, whichever way two merges go
                .with_for_update()
            )
        }
        source = rows.get(source_user_id)
        if source is None:
            return  # nothing to merge (or a redelivery)
        merged = merged_consent(source, rows.get(target_user_id))
        await self.session.execute(delete(self.table).where(self.table.c.user_id == source_user_id))
        if merged is not None and merged != rows.get(target_user_id):
            values = {"consent_id": merged.consent_id, "status": merged.status, "as_of": merged.as_of}
            await self.session.execute(
                insert(self.table)
                .values(user_id=target_user_id, **values)
                .on_conflict_do_update(
                    index_elements=[self.table.c.user_id],
                    set_=values,
                    where=self.table.c.as_of <= merged.as_of,  # a newer event of the target wins
                )
            )
