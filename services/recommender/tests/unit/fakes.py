"""The recommender's in-memory repository and unit of work, for handler unit tests."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

from spendsense_recommender.domain.model import (
    ApprovedPosition,
    ReviewTarget,
    ShownText,
    StoredRecommendation,
    StoredTrace,
)
from spendsense_recommender.domain.recommend import Recommendation
from spendsense_recommender.domain.review import VISIBLE
from spendsense_recommender.handlers.recommend import apply_review
from spendsense_recommender.handlers.unit_of_work import RecommendationRepository, RecommenderUnitOfWork
from spendsense_shared.messaging.catalog import (
    OverrideText,
    PersonaAssigned,
    RecommendationReviewed,
    new_event,
    parse_data,
)
from spendsense_shared.messaging.claim_check import check_in_many
from spendsense_shared.messaging.contracts import AnalysisReport, PersonaDetails
from spendsense_shared.messaging.envelope import EventEnvelope
from spendsense_shared.testing.claimed_lines import InMemoryClaimedLines
from spendsense_shared.testing.fakes import FakeUnitOfWork, InMemoryConsentProjection


class InMemoryRecommendationRepository(RecommendationRepository):
    def __init__(self) -> None:
        self.rows: dict[str, StoredRecommendation] = {}
        self.upload_of: dict[str, str | None] = {}
        self.user_of: dict[str, str] = {}
        self.catalog_version_of: dict[str, str] = {}
        self.trace_rows: list[tuple[int, str, str, dict[str, Any]]] = []  # seq, user, recommendation, trace
        self.chain_of: dict[str, str] = {}  # recommendation → the chain its trace was sealed in
        self.feedback: list[dict[str, Any]] = []
        self.now = datetime(2026, 11, 1, tzinfo=UTC)

    async def last_trace_hash(self, user_id: str) -> str | None:
        mine = [t for _, _, rec, t in self.trace_rows if self.chain_of[rec] == user_id]
        return str(mine[-1]["chain"]["hash"]) if mine else None

    async def dismissed_items(self, user_id: str) -> set[str]:
        return {f["item_id"] for f in self.feedback if f["user_id"] == user_id and f["kind"] == "dismissed"}

    async def stored_texts(self, recommendation_ids: Sequence[str]) -> dict[str, tuple[str, str, str, str]]:
        return {
            i: (r.title, r.body, r.rationale, r.disclosure)
            for i in recommendation_ids
            if (r := self.rows.get(i)) is not None
        }

    async def add_many(
        self, batches: Sequence[tuple[Sequence[Recommendation], str | None]], *, status: str
    ) -> list[list[str]]:
        return [self._add(items, upload_id, status) for items, upload_id in batches]

    def _add(self, items: Sequence[Recommendation], upload_id: str | None, status: str) -> list[str]:
        added = []
        self.now += timedelta(seconds=1)
        for item in items:
            if item.id in self.rows:
                continue
            self.rows[item.id] = StoredRecommendation(
                id=item.id,
                kind=item.kind,
                item_id=item.item_id,
                rank=item.rank,
                title=item.title,
                body=item.body,
                rationale=item.rationale,
                disclosure=item.disclosure,
                status=status,
                persona=item.persona,
                details={
                    "format": item.format,
                    "partner": item.partner,
                    "product_type": item.product_type,
                    "url": item.url,
                },
                created_at=self.now,
            )
            self.upload_of[item.id], self.user_of[item.id] = upload_id, item.user_id
            self.catalog_version_of[item.id] = item.catalog_version
            self.trace_rows.append((len(self.trace_rows) + 1, item.user_id, item.id, item.trace))
            self.chain_of[item.id] = item.user_id
            added.append(item.id)
        return added

    def trace_of(self, recommendation_id: str) -> dict[str, Any]:
        """The stored trace of one recommendation (for assertions; not a port method)."""
        return next(t for _, _, rec, t in self.trace_rows if rec == recommendation_id)

    async def for_review(self, recommendation_id: str) -> ReviewTarget | None:
        row = self.rows.get(recommendation_id)
        if row is None:
            return None
        shown = ShownText(
            catalog_item_id=row.item_id,
            catalog_version=self.catalog_version_of[recommendation_id],
            title=row.title,
            body=row.body,
            rationale=row.rationale,
            disclosure=row.disclosure,
            details=dict(row.details),
        )
        trace = self.trace_of(recommendation_id)
        return ReviewTarget(recommendation_id, self.user_of[recommendation_id], row.status, shown, trace)

    async def save_review(
        self, recommendation_id: str, *, status: str, trace: dict[str, Any], shown: ShownText | None
    ) -> None:
        self.trace_rows = [
            (seq, user, rec, trace if rec == recommendation_id else stored)
            for seq, user, rec, stored in self.trace_rows
        ]
        changes: dict[str, Any] = {"status": status}
        if shown is not None:
            changes.update(
                item_id=shown.catalog_item_id,
                title=shown.title,
                body=shown.body,
                rationale=shown.rationale,
                disclosure=shown.disclosure,
                details=dict(shown.details),
            )
            self.catalog_version_of[recommendation_id] = shown.catalog_version
        self.rows[recommendation_id] = replace(self.rows[recommendation_id], **changes)

    async def visible_item_id(self, user_id: str, recommendation_id: str) -> str | None:
        row = self.rows.get(recommendation_id)
        if row is None or self.user_of[recommendation_id] != user_id or row.status not in VISIBLE:
            return None
        return row.item_id

    async def add_feedback(
        self, user_id: str, recommendation_id: str, item_id: str, kind: str, comment: str | None
    ) -> None:
        self.feedback.append(
            {
                "user_id": user_id,
                "recommendation_id": recommendation_id,
                "item_id": item_id,
                "kind": kind,
                "comment": comment,
            }
        )

    async def visible(
        self, user_id: str, limit: int, after: ApprovedPosition | None = None
    ) -> list[StoredRecommendation]:
        def key(r: StoredRecommendation) -> tuple[float, int, str]:
            return (-r.created_at.timestamp(), r.rank, r.id)

        rows = sorted(
            (r for r in self.rows.values() if self.user_of[r.id] == user_id and r.status in VISIBLE),
            key=key,
        )
        if after is not None:
            start = (-after.created_at.timestamp(), after.rank, after.id)
            rows = [r for r in rows if key(r) > start]
        return rows[:limit]

    async def chains(self, user_id: str) -> dict[str, list[dict[str, Any]]]:
        found: dict[str, list[dict[str, Any]]] = {}
        for _, u, rec, t in self.trace_rows:
            if u == user_id:
                found.setdefault(self.chain_of[rec], []).append(t)
        return found

    async def chain(self, user_id: str) -> list[dict[str, Any]]:
        """Every trace of the user in the order stored (for assertions; not a port method)."""
        return [t for _, u, _, t in self.trace_rows if u == user_id]

    async def traces(self, user_id: str, limit: int, after_seq: int | None = None) -> list[StoredTrace]:
        mine = [StoredTrace(s, t) for s, u, _, t in self.trace_rows if u == user_id]
        return [t for t in mine if after_seq is None or t.seq > after_seq][:limit]

    async def merge_user(self, source_user_id: str, target_user_id: str) -> None:
        for rec, user in list(self.user_of.items()):
            if user == source_user_id:
                self.user_of[rec] = target_user_id
        self.trace_rows = [
            (seq, target_user_id if user == source_user_id else user, rec, trace)
            for seq, user, rec, trace in self.trace_rows
        ]
        for entry in self.feedback:
            if entry["user_id"] == source_user_id:
                entry["user_id"] = target_user_id

    async def erase_user(self, user_id: str) -> None:
        mine = {rec for rec, user in self.user_of.items() if user == user_id}
        mine |= {rec for _, user, rec, _ in self.trace_rows if user == user_id}
        for rec in mine:
            self.rows.pop(rec, None)
            self.upload_of.pop(rec, None)
            self.user_of.pop(rec, None)
            self.catalog_version_of.pop(rec, None)
            self.chain_of.pop(rec, None)
        self.trace_rows = [t for t in self.trace_rows if t[1] != user_id]
        self.feedback = [f for f in self.feedback if f["user_id"] != user_id]


class FakeRecommenderUnitOfWork(FakeUnitOfWork, RecommenderUnitOfWork):
    def __init__(self) -> None:
        super().__init__()
        self.consent = InMemoryConsentProjection()
        self.recommendations = InMemoryRecommendationRepository()
        self.review_objects = InMemoryClaimedLines()


async def assigned(
    bucket: Any, entry: dict[str, Any], user_id: str, upload_id: str, *, name: str | None = None
) -> EventEnvelope:
    """``persona.assigned`` for ``user_id`` (a real report renamed), its details checked into the bucket
    (as ``{name or upload_id}.json``)."""
    report = AnalysisReport.model_validate({**entry["report"], "user_id": user_id})
    body = PersonaDetails(report=report, accounts=entry["accounts"]).model_dump_json(by_alias=True).encode()
    key = f"features/users/{user_id}/analysis/{name or upload_id}.json"
    [claim] = await check_in_many(bucket, [(key, body)])
    assert report.as_of is not None
    data = PersonaAssigned(
        user_id=user_id,
        upload_id=upload_id,
        as_of=report.as_of,
        rule_set_version="personas-v1",
        personas={w: r.persona.primary or "general_wellness" for w, r in report.windows.items()},
        details=claim,
    )
    return new_event(data, user_id=user_id)


def reviewed(
    recommendation_id: str,
    user_id: str,
    decision: str = "approved",
    operator_id: str = "op-1",
    *,
    override: OverrideText | None = None,
    reason: str | None = None,
    policy: str | None = None,
) -> EventEnvelope:
    """``recommendation.reviewed`` as the operator service publishes it."""
    data = RecommendationReviewed(
        recommendation_id=recommendation_id,
        user_id=user_id,
        decision=decision,  # type: ignore[arg-type]
        operator_id=operator_id,
        reason=reason,
        override=override,
        policy=policy,
    )
    return new_event(data, user_id=user_id)


async def review(uow: FakeRecommenderUnitOfWork, event: EventEnvelope) -> None:
    """Apply one ``recommendation.reviewed`` as the consumer does (one transaction)."""
    async with uow:
        await apply_review(event, parse_data(event), uow)
        await uow.commit()


async def approve_all(uow: FakeRecommenderUnitOfWork, user_id: str) -> list[str]:
    """An operator approves each of the user's pending recommendations (one event each); their ids."""
    repo = uow.recommendations
    pending = [
        rec
        for rec, user in repo.user_of.items()
        if user == user_id and repo.rows[rec].status == "pending_review"
    ]
    for rec in pending:
        await review(uow, reviewed(rec, user_id))
    return pending
