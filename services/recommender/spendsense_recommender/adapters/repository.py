"""Recommendations, traces and feedback in the recommender schema."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from typing import Any

from sqlalchemy import String, and_, any_, delete, func, or_, select, update
from sqlalchemy.dialects.postgresql import ARRAY, array, insert
from sqlalchemy.ext.asyncio import AsyncSession

from spendsense_recommender.adapters.orm import feedback, recommendations, traces
from spendsense_recommender.domain.model import (
    ApprovedPosition,
    ReviewTarget,
    ShownText,
    StoredRecommendation,
    StoredTrace,
)
from spendsense_recommender.domain.recommend import Recommendation
from spendsense_recommender.domain.review import VISIBLE
from spendsense_recommender.handlers.unit_of_work import RecommendationRepository, UserHistory
from spendsense_shared.db import insert_all

# ``status = ANY(ARRAY[...])`` rather than ``IN (...)``: a list is an "expanding" parameter, which
# SQLAlchemy rewrites into the statement on every execution (the hot read of every user's list).
_IS_VISIBLE = recommendations.c.status == any_(array(sorted(VISIBLE)))


def _date(value: str | None) -> date | None:
    return date.fromisoformat(value) if value else None


def _trace_row(item: Recommendation) -> dict[str, Any]:
    return {
        "recommendation_id": item.id,
        "user_id": item.user_id,
        "chain_id": item.user_id,  # sealed onto the user's own chain (last_trace_hash)
        "trace": item.trace,
        "hash": item.trace["chain"]["hash"],
    }


def _recommendation_row(item: Recommendation, upload_id: str | None, status: str) -> dict[str, Any]:
    return {
        "id": item.id,
        "user_id": item.user_id,
        "kind": item.kind,
        "item_id": item.item_id,
        "catalog_version": item.catalog_version,
        "rank": item.rank,
        "persona": item.persona,
        "title": item.title,
        "body": item.body,
        "rationale": item.rationale,
        "disclosure": item.disclosure,
        "generator": item.generator,
        "status": status,
        "upload_id": upload_id,
        "as_of": _date(item.trace.get("input", {}).get("as_of")),
        "details": {
            "format": item.format,
            "partner": item.partner,
            "product_type": item.product_type,
            "url": item.url,
        },
    }


class SqlRecommendationRepository(RecommendationRepository):
    def __init__(self, session: AsyncSession):
        self.session = session

    async def last_trace_hash(self, user_id: str) -> str | None:
        row = (
            await self.session.execute(
                select(traces.c.hash)
                .where(traces.c.chain_id == user_id)
                .order_by(traces.c.seq.desc())
                .limit(1)
            )
        ).first()
        return None if row is None else str(row.hash)

    async def dismissed_items(self, user_id: str) -> set[str]:
        rows = await self.session.execute(
            select(feedback.c.item_id).where(feedback.c.user_id == user_id, feedback.c.kind == "dismissed")
        )
        return {r.item_id for r in rows}

    async def histories(self, user_ids: Sequence[str]) -> dict[str, UserHistory]:
        """Two queries for the batch, not two per user: each chain's end through its index (one lookup
        per user, however long the chain), and every dismissal of the users."""
        ids = sorted(set(user_ids))
        if not ids:
            return {}
        wanted = array(ids).cast(ARRAY(String))
        user = func.unnest(wanted).table_valued("user_id").render_derived(name="wanted")
        last = (
            select(traces.c.hash)
            .where(traces.c.chain_id == user.c.user_id)
            .order_by(traces.c.seq.desc())
            .limit(1)
            .scalar_subquery()
        )
        rows = await self.session.execute(select(user.c.user_id, last.label("hash")))
        ends = {r.user_id: r.hash for r in rows}
        dismissed: dict[str, set[str]] = {u: set() for u in ids}
        rows = await self.session.execute(
            select(feedback.c.user_id, feedback.c.item_id).where(
                feedback.c.user_id == any_(wanted), feedback.c.kind == "dismissed"
            )
        )
        for row in rows:
            dismissed[row.user_id].add(row.item_id)
        return {u: UserHistory(dismissed[u], None if ends.get(u) is None else str(ends[u])) for u in ids}

    async def stored_texts(self, recommendation_ids: Sequence[str]) -> dict[str, tuple[str, str, str, str]]:
        rows = await self.session.execute(
            select(
                recommendations.c.id,
                recommendations.c.title,
                recommendations.c.body,
                recommendations.c.rationale,
                recommendations.c.disclosure,
            ).where(recommendations.c.id.in_(list(recommendation_ids)))
        )
        return {r.id: (r.title, r.body, r.rationale, r.disclosure) for r in rows}

    async def add_many(
        self, batches: Sequence[tuple[Sequence[Recommendation], str | None]], *, status: str
    ) -> list[list[str]]:
        """Two statements for a whole batch of users (two per user took a quarter of the worker's CPU for
        an upload): the recommendations, then the traces of those that are new, in ``batches``' order
        (their ``seq`` is the order of each user's chain)."""
        rows = [
            _recommendation_row(item, upload_id, status) for items, upload_id in batches for item in items
        ]
        if not rows:
            return [[] for _ in batches]
        stored = await self.session.execute(
            insert_all(recommendations, rows).on_conflict_do_nothing().returning(recommendations.c.id)
        )
        new = {row.id for row in stored}
        added: list[list[Recommendation]] = []
        for items, _ in batches:  # in items' order; an id given twice, once (as its first was stored)
            added.append([])
            for item in items:
                if item.id in new:
                    new.discard(item.id)
                    added[-1].append(item)
        if any(added):
            await self.session.execute(
                insert_all(traces, [_trace_row(item) for mine in added for item in mine])
            )
        return [[item.id for item in mine] for mine in added]

    async def for_review(self, recommendation_id: str) -> ReviewTarget | None:
        r = (
            await self.session.execute(
                select(recommendations, traces.c.trace)
                .join(traces, traces.c.recommendation_id == recommendations.c.id)
                .where(recommendations.c.id == recommendation_id)
                .with_for_update()  # both rows: reviews of one item apply one after the other
            )
        ).first()
        if r is None:
            return None
        shown = ShownText(
            catalog_item_id=r.item_id,
            catalog_version=r.catalog_version or str(r.trace.get("catalog", {}).get("version", "")),
            title=r.title,
            body=r.body,
            rationale=r.rationale,
            disclosure=r.disclosure,
            details=dict(r.details),
        )
        return ReviewTarget(r.id, r.user_id, r.status, shown, r.trace)

    async def save_review(
        self, recommendation_id: str, *, status: str, trace: dict[str, Any], shown: ShownText | None
    ) -> None:
        await self.session.execute(
            update(traces).where(traces.c.recommendation_id == recommendation_id).values(trace=trace)
        )
        values: dict[str, Any] = {"status": status, "updated_at": func.now()}
        if shown is not None:
            values.update(
                item_id=shown.catalog_item_id,
                catalog_version=shown.catalog_version,
                title=shown.title,
                body=shown.body,
                rationale=shown.rationale,
                disclosure=shown.disclosure,
                details=shown.details,
            )
        await self.session.execute(
            update(recommendations).where(recommendations.c.id == recommendation_id).values(**values)
        )

    async def visible_item_id(self, user_id: str, recommendation_id: str) -> str | None:
        row = (
            await self.session.execute(
                select(recommendations.c.item_id).where(
                    recommendations.c.id == recommendation_id,
                    recommendations.c.user_id == user_id,
                    recommendations.c.status.in_(sorted(VISIBLE)),
                )
            )
        ).first()
        return None if row is None else str(row.item_id)

    async def add_feedback(
        self, user_id: str, recommendation_id: str, item_id: str, kind: str, comment: str | None
    ) -> None:
        await self.session.execute(
            insert(feedback).values(
                recommendation_id=recommendation_id,
                user_id=user_id,
                item_id=item_id,
                kind=kind,
                comment=comment,
            )
        )

    async def visible(
        self, user_id: str, limit: int, after: ApprovedPosition | None = None
    ) -> list[StoredRecommendation]:
        query = select(recommendations).where(recommendations.c.user_id == user_id, _IS_VISIBLE)
        if after is not None:
            query = query.where(
                or_(
                    recommendations.c.created_at < after.created_at,
                    and_(
                        recommendations.c.created_at == after.created_at, recommendations.c.rank > after.rank
                    ),
                    and_(
                        recommendations.c.created_at == after.created_at,
                        recommendations.c.rank == after.rank,
                        recommendations.c.id > after.id,
                    ),
                )
            )
        query = query.order_by(
            recommendations.c.created_at.desc(), recommendations.c.rank, recommendations.c.id
        ).limit(limit)
        return [
            StoredRecommendation(
                id=r.id,
                kind=r.kind,
                item_id=r.item_id,
                rank=r.rank,
                title=r.title,
                body=r.body,
                rationale=r.rationale,
                disclosure=r.disclosure,
                status=r.status,
                persona=r.persona,
                details=r.details,
                created_at=r.created_at,
            )
            for r in await self.session.execute(query)
        ]

    async def chains(self, user_id: str) -> dict[str, list[dict[str, Any]]]:
        rows = await self.session.execute(
            select(traces.c.chain_id, traces.c.trace)
            .where(traces.c.user_id == user_id)
            .order_by(traces.c.seq)
        )
        found: dict[str, list[dict[str, Any]]] = {}
        for r in rows:
            found.setdefault(r.chain_id, []).append(r.trace)
        return found

    async def traces(self, user_id: str, limit: int, after_seq: int | None = None) -> list[StoredTrace]:
        query = select(traces.c.seq, traces.c.trace).where(traces.c.user_id == user_id)
        if after_seq is not None:
            query = query.where(traces.c.seq > after_seq)
        rows = await self.session.execute(query.order_by(traces.c.seq).limit(limit))
        return [StoredTrace(int(r.seq), r.trace) for r in rows]

    async def erase_user(self, user_id: str) -> None:
        for table in (feedback, traces, recommendations):
            await self.session.execute(delete(table).where(table.c.user_id == user_id))

    async def merge_user(self, source_user_id: str, target_user_id: str) -> None:
        for table in (recommendations, traces, feedback):  # traces keep their chain_id (and hashes)
            await self.session.execute(
                update(table).where(table.c.user_id == source_user_id).values(user_id=target_user_id)
            )
