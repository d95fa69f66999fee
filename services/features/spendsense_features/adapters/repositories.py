"""The features service's repositories in SQL (all of its SQL lives in the adapters)."""

from __future__ import annotations

from datetime import date
from typing import Any

from sqlalchemy import Table, and_, delete, func, or_, select, text, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from spendsense_features.adapters.orm import (
    consent_projection,
    details_objects,
    persona_assignments,
    persona_history,
    rule_sets,
    signals,
    user_snapshots,
)
from spendsense_features.domain.model import (
    HistoryPosition,
    PersonaAssignment,
    PersonaTransition,
    StoredRuleSet,
    StoredSignals,
    UserSnapshotKeys,
)
from spendsense_features.handlers.unit_of_work import (
    AnalysisRepository,
    RuleSetRepository,
    SnapshotRepository,
)
from spendsense_shared.claimed_lines_store import SqlClaimedLinesRepository
from spendsense_shared.db import insert_all


async def move_rows_unless_taken(
    session: AsyncSession, table: Table, source_user_id: str, target_user_id: str
) -> None:
    """Re-key the source user's rows of ``table`` to the target, except where the target already has a
    row with the same key (its own wins); delete what is left of the source's."""
    taken = table.alias("taken")
    others = [c.name for c in table.primary_key.columns if c.name != "user_id"]
    await session.execute(
        update(table)
        .where(
            table.c.user_id == source_user_id,
            ~select(taken.c.user_id)
            .where(taken.c.user_id == target_user_id, *(taken.c[k] == table.c[k] for k in others))
            .exists(),
        )
        .values(user_id=target_user_id)
    )
    await session.execute(delete(table).where(table.c.user_id == source_user_id))


_LOCK_USERS_OF_UPLOAD = text(
    "SELECT pg_advisory_xact_lock(k) FROM ("
    " SELECT DISTINCT hashtextextended('features:upload:' || :upload_id || ':' || u, 0) AS k"
    " FROM unnest(CAST(:users AS text[])) AS u ORDER BY k"
    ") AS locks"
)


class SqlAnalysisRepository(AnalysisRepository):
    def __init__(self, session: AsyncSession):
        self.session = session

    async def analyzed(self, upload_id: str, user_ids: list[str]) -> set[str]:
        # Each user's lock on this upload until the transaction ends: two announcements of the same users
        # (the profile's reconciler announcing again while the first is still being analyzed) are
        # analyzed in turn, while the upload's other chunks of users are analyzed at the same time (one
        # lock for the whole upload made its chunks wait for each other). Taken in one order (by key),
        # so two overlapping announcements cannot deadlock.
        await self.session.execute(_LOCK_USERS_OF_UPLOAD, {"upload_id": upload_id, "users": sorted(user_ids)})
        rows = await self.session.execute(
            select(persona_history.c.user_id)
            .where(persona_history.c.upload_id == upload_id, persona_history.c.user_id.in_(user_ids))
            .distinct()
        )
        return {row.user_id for row in rows}

    async def save_many(
        self, reports: list[dict[str, Any]], upload_id: str | None, rule_set_version: str
    ) -> None:
        """Every report in three statements (and one read of the personas they replace), not seven round
        trips per user."""
        if not reports:
            return
        users = [r["user_id"] for r in reports]
        previous = {
            (r.user_id, r.window): r.primary_persona
            for r in await self.session.execute(
                select(
                    persona_assignments.c.user_id,
                    persona_assignments.c.window,
                    persona_assignments.c.primary_persona,
                ).where(persona_assignments.c.user_id.in_(users))
            )
        }
        signal_rows, assignments, history = [], [], []
        for report in reports:
            user_id, as_of = report["user_id"], date.fromisoformat(str(report["as_of"]))
            for window, result in report["windows"].items():
                persona = result["persona"]
                signal_rows.append(
                    {
                        "user_id": user_id,
                        "window": window,
                        "as_of": as_of,
                        "upload_id": upload_id,
                        "values": result["signals"],
                    }
                )
                assignments.append(
                    {
                        "user_id": user_id,
                        "window": window,
                        "primary_persona": persona["primary"],
                        "matched": persona["matched"],
                        "rule_set_version": rule_set_version,
                        "as_of": as_of,
                        "upload_id": upload_id,
                    }
                )
                history.append(
                    {
                        "user_id": user_id,
                        "window": window,
                        "primary_persona": persona["primary"],
                        "previous_persona": previous.get((user_id, window)),
                        "rule_set_version": rule_set_version,
                        "as_of": as_of,
                        "upload_id": upload_id,
                    }
                )
        await self.session.execute(insert_all(signals, signal_rows, replace=True))
        await self.session.execute(insert_all(persona_assignments, assignments, replace=True))
        await self.session.execute(insert_all(persona_history, history))

    async def save(self, report: dict[str, Any], upload_id: str | None, rule_set_version: str) -> None:
        await self.save_many([report], upload_id, rule_set_version)

    async def reports_of_upload(
        self, upload_id: str, user_ids: list[str]
    ) -> list[tuple[dict[str, Any], str]]:
        rows = await self.session.execute(
            select(
                signals.c.user_id,
                signals.c.window,
                signals.c.as_of,
                signals.c["values"],
                persona_assignments.c.primary_persona,
                persona_assignments.c.matched,
                persona_assignments.c.rule_set_version,
            )
            .join(
                persona_assignments,
                and_(
                    persona_assignments.c.user_id == signals.c.user_id,
                    persona_assignments.c.window == signals.c.window,
                ),
            )
            .where(
                signals.c.user_id.in_(user_ids),
                signals.c.upload_id == upload_id,
                persona_assignments.c.upload_id == upload_id,
            )
            .order_by(signals.c.user_id, signals.c.window)
        )
        reports: dict[str, tuple[dict[str, Any], str]] = {}
        for row in rows:
            report, _ = reports.setdefault(
                row.user_id,
                (
                    {"user_id": row.user_id, "as_of": row.as_of.isoformat(), "windows": {}},
                    row.rule_set_version,
                ),
            )
            report["windows"][row.window] = {
                "persona": {"primary": row.primary_persona, "matched": row.matched},
                "signals": row.values,
            }
        return list(reports.values())

    async def signals(self, user_id: str, window: str) -> StoredSignals | None:
        row = (
            await self.session.execute(
                select(signals).where(signals.c.user_id == user_id, signals.c.window == window)
            )
        ).first()
        if row is None:
            return None
        return StoredSignals(
            user_id=row.user_id,
            window=row.window,
            as_of=row.as_of,
            upload_id=row.upload_id,
            computed_at=row.computed_at,
            values=row.values,
        )

    async def current_personas(self, user_id: str) -> list[PersonaAssignment]:
        rows = await self.session.execute(
            select(persona_assignments)
            .where(persona_assignments.c.user_id == user_id)
            .order_by(persona_assignments.c.window)
        )
        return [
            PersonaAssignment(
                window=r.window,
                primary=r.primary_persona,
                matched=r.matched,
                rule_set_version=r.rule_set_version,
                as_of=r.as_of,
                assigned_at=r.assigned_at,
            )
            for r in rows
        ]

    async def persona_history(
        self, user_id: str, limit: int, after: HistoryPosition | None = None
    ) -> list[PersonaTransition]:
        query = select(persona_history).where(persona_history.c.user_id == user_id)
        if after is not None:
            query = query.where(
                or_(
                    persona_history.c.assigned_at < after.assigned_at,
                    and_(
                        persona_history.c.assigned_at == after.assigned_at,
                        persona_history.c.window < after.window,
                    ),
                )
            )
        query = query.order_by(persona_history.c.assigned_at.desc(), persona_history.c.window.desc())
        rows = await self.session.execute(query.limit(limit))
        return [
            PersonaTransition(
                window=r.window,
                persona=r.primary_persona,
                previous=r.previous_persona,
                rule_set_version=r.rule_set_version,
                as_of=r.as_of,
                assigned_at=r.assigned_at,
            )
            for r in rows
        ]

    async def merge_user(self, source_user_id: str, target_user_id: str) -> None:
        for table in (signals, persona_assignments):
            await move_rows_unless_taken(self.session, table, source_user_id, target_user_id)
        await self.session.execute(
            update(persona_history)
            .where(persona_history.c.user_id == source_user_id)
            .values(user_id=target_user_id)
        )

    async def erase_user(self, user_id: str) -> None:
        for table in (signals, persona_assignments, persona_history):
            await self.session.execute(delete(table).where(table.c.user_id == user_id))


class SqlSnapshotRepository(SnapshotRepository):
    def __init__(self, session: AsyncSession):
        self.session = session

    async def remember(
        self, user_id: str, upload_id: str, object_keys: list[str], as_of: date | None
    ) -> None:
        row = {"user_id": user_id, "upload_id": upload_id, "object_keys": object_keys, "as_of": as_of}
        await self.session.execute(
            insert(user_snapshots)
            .values(row)
            .on_conflict_do_update(
                index_elements=[user_snapshots.c.user_id],
                set_={
                    "upload_id": upload_id,
                    "object_keys": object_keys,
                    "as_of": as_of,
                    "updated_at": func.now(),
                },
            )
        )

    async def remember_many(
        self, object_keys: dict[str, list[str]], upload_id: str, as_of: date | None
    ) -> None:
        if not object_keys:
            return
        rows = [
            {"user_id": u, "upload_id": upload_id, "object_keys": keys, "as_of": as_of}
            for u, keys in object_keys.items()
        ]
        statement = insert(user_snapshots)
        await self.session.execute(
            statement.on_conflict_do_update(
                index_elements=[user_snapshots.c.user_id],
                set_={
                    "upload_id": statement.excluded.upload_id,
                    "object_keys": statement.excluded.object_keys,
                    "as_of": statement.excluded.as_of,
                    "updated_at": func.now(),
                },
            ),
            rows,
        )

    async def of_consented_users(self) -> list[UserSnapshotKeys]:
        rows = await self.session.execute(
            select(user_snapshots.c.user_id, user_snapshots.c.object_keys)
            .join(consent_projection, consent_projection.c.user_id == user_snapshots.c.user_id)
            .where(consent_projection.c.status == "granted")
            .order_by(user_snapshots.c.user_id)
        )
        return [UserSnapshotKeys(r.user_id, list(r.object_keys)) for r in rows]

    async def merge_user(self, source_user_id: str, target_user_id: str) -> None:
        await move_rows_unless_taken(self.session, user_snapshots, source_user_id, target_user_id)

    async def erase_user(self, user_id: str) -> None:
        await self.session.execute(delete(user_snapshots).where(user_snapshots.c.user_id == user_id))


class SqlDetailsObjectRepository(SqlClaimedLinesRepository):
    def __init__(self, session: AsyncSession):
        super().__init__(session, details_objects, "features:details:")


def _stored(row: Any) -> StoredRuleSet:
    return StoredRuleSet(row.version, row.document, row.created_by, row.activated_at)


class SqlRuleSetRepository(RuleSetRepository):
    def __init__(self, session: AsyncSession):
        self.session = session

    async def latest_activated(self) -> StoredRuleSet | None:
        row = (
            await self.session.execute(
                select(rule_sets)
                .where(rule_sets.c.activated_at.is_not(None))
                .order_by(rule_sets.c.activated_at.desc())
                .limit(1)
            )
        ).first()
        return None if row is None else _stored(row)

    async def get(self, version: str) -> StoredRuleSet | None:
        row = (await self.session.execute(select(rule_sets).where(rule_sets.c.version == version))).first()
        return None if row is None else _stored(row)

    async def add(self, version: str, document: Any, created_by: str) -> bool:
        result = await self.session.execute(
            insert(rule_sets)
            .values(version=version, document=document, created_by=created_by)
            .on_conflict_do_nothing()
            .returning(rule_sets.c.version)
        )
        return result.first() is not None

    async def activate(self, version: str) -> None:
        await self.session.execute(
            update(rule_sets).where(rule_sets.c.version == version).values(activated_at=func.now())
        )

    async def all(self) -> list[StoredRuleSet]:
        rows = await self.session.execute(select(rule_sets).order_by(rule_sets.c.created_at))
        return [_stored(r) for r in rows]
