"""The index of claimed lines (:mod:`spendsense_shared.claimed_lines`) in SQL: its table, declared on a
service's metadata under the name the service gives it (:func:`add_claimed_lines`, and
:func:`create_claimed_lines_table` for its migration), and the repository over that table."""

from __future__ import annotations

from alembic import op
from sqlalchemy import Column, MetaData, String, Table, delete, select, text, update
from sqlalchemy.ext.asyncio import AsyncSession

from spendsense_shared.claimed_lines import ClaimedLinesRepository
from spendsense_shared.db import insert_all


def _columns() -> list[Column[str]]:
    # the line is of ``report_user_id``: the user's own id, or that of an account merged into theirs
    return [
        Column("user_id", String(128), primary_key=True),
        Column("key", String(1024), primary_key=True),
        Column("report_user_id", String(128), primary_key=True),
    ]


def add_claimed_lines(metadata: MetaData, name: str) -> Table:
    """Declare the index table ``name`` on a service's ``metadata``."""
    return Table(name, metadata, *_columns())


def create_claimed_lines_table(name: str) -> None:
    """For the migration of a service that keeps the index ``name``."""
    op.create_table(name, *_columns())


class SqlClaimedLinesRepository(ClaimedLinesRepository):
    """Over ``table`` (:func:`add_claimed_lines`); ``lock_namespace`` prefixes the advisory locks taken on
    its object keys (one per service and index: ``features:details:``)."""

    def __init__(self, session: AsyncSession, table: Table, lock_namespace: str):
        self.session = session
        self.table = table
        self._lock = text(
            "SELECT pg_advisory_xact_lock(k) FROM ("
            " SELECT DISTINCT hashtextextended(CAST(:namespace AS text) || o, 0) AS k"
            " FROM unnest(CAST(:keys AS text[])) AS o ORDER BY k"
            ") AS locks"
        )
        self.lock_namespace = lock_namespace

    async def remember(self, held: list[tuple[str, str]]) -> None:
        rows = [{"user_id": u, "key": k, "report_user_id": u} for u, k in dict.fromkeys(held)]
        if rows:
            await self.session.execute(insert_all(self.table, rows).on_conflict_do_nothing())

    async def held_for(self, user_id: str) -> dict[str, set[str]]:
        table = self.table
        rows = await self.session.execute(
            select(table.c.key, table.c.report_user_id).where(table.c.user_id == user_id)
        )
        held: dict[str, set[str]] = {}
        for row in rows:
            held.setdefault(row.key, set()).add(row.report_user_id)
        if held:  # taken in one order (by lock key): two erasures cannot deadlock
            await self.session.execute(self._lock, {"namespace": self.lock_namespace, "keys": sorted(held)})
        return held

    async def merge_user(self, source_user_id: str, target_user_id: str) -> None:
        """Re-key the source's rows to the target, except where the target has the same row already;
        delete what is left of the source's."""
        table = self.table
        taken = table.alias("taken")
        await self.session.execute(
            update(table)
            .where(
                table.c.user_id == source_user_id,
                ~select(taken.c.user_id)
                .where(
                    taken.c.user_id == target_user_id,
                    taken.c.key == table.c.key,
                    taken.c.report_user_id == table.c.report_user_id,
                )
                .exists(),
            )
            .values(user_id=target_user_id)
        )
        await self.session.execute(delete(table).where(table.c.user_id == source_user_id))

    async def erase_user(self, user_id: str) -> None:
        await self.session.execute(delete(self.table).where(self.table.c.user_id == user_id))
