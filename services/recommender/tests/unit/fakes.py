"""The recommender's in-memory repository and unit of work, for handler unit tests."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from spendsense_recommender.domain.model import ApprovedPosition, StoredRecommendation, StoredTrace
from spendsense_recommender.domain.recommend import Recommendation
from spendsense_recommender.domain.trace import append_operator_action
from spendsense_recommender.handlers.unit_of_work import RecommendationRepository, RecommenderUnitOfWork
from spendsense_shared.messaging.catalog import PersonaAssigned, new_event
from spendsense_shared.messaging.claim_check import check_in_many
from spendsense_shared.messaging.contracts import AnalysisReport, PersonaDetails
from spendsense_shared.messaging.envelope import EventEnvelope
from spendsense_shared.testing.fakes import FakeUnitOfWork, InMemoryConsentProjection


class InMemoryRecommendationRepository(RecommendationRepository):
    def __init__(self) -> None:
        self.rows: dict[str, StoredRecommendation] = {}
        self.upload_of: dict[str, str | None] = {}
        self.user_of: dict[str, str] = {}
        self.trace_rows: list[tuple[int, str, str, dict[str, Any]]] = []  # seq, user, recommendation, trace
        self.chain_of: dict[str, str] = {}  # recommendation → the chain its trace was sealed in
        self.feedback: list[dict[str, Any]] = []
        self.now = datetime(2026, 11, 1, tzinfo=UTC)

    async def last_trace_hash(self, user_id: str) -> str | None:
        mine = [t for _, _, rec, t in self.trace_rows if self.chain_of[rec] == user_id]
        return str(mine[-1]["chain"]["hash"]) if mine else None

    async def dismissed_items(self, user_id: str) -> set[str]:
        return {f["item_id"] for f in self.feedback if f["user_id"] == user_id and f["kind"] == "dismissed"}

    async def add(self, items: Sequence[Recommendation], *, upload_id: str | None, status: str) -> list[str]:
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
                details={"format": item.format, "partner": item.partner},
                created_at=self.now,
            )
            self.upload_of[item.id], self.user_of[item.id] = upload_id, item.user_id
            self.trace_rows.append((len(self.trace_rows) + 1, item.user_id, item.id, item.trace))
            self.chain_of[item.id] = item.user_id
            added.append(item.id)
        return added

    async def record_action(self, recommendation_id: str, action: dict[str, Any], status: str | None) -> bool:
        for i, (seq, user, rec, trace) in enumerate(self.trace_rows):
            if rec == recommendation_id:
                entry = {"at": datetime.now(UTC).isoformat(), **action}
                self.trace_rows[i] = (seq, user, rec, append_operator_action(trace, entry))
                if status is not None:
                    row = self.rows[recommendation_id]
                    self.rows[recommendation_id] = StoredRecommendation(**{**row.__dict__, "status": status})
                return True
        return False

    async def approved_item_id(self, user_id: str, recommendation_id: str) -> str | None:
        row = self.rows.get(recommendation_id)
        if row is None or self.user_of[recommendation_id] != user_id or row.status != "approved":
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

    async def approved(
        self, user_id: str, limit: int, after: ApprovedPosition | None = None
    ) -> list[StoredRecommendation]:
        def key(r: StoredRecommendation) -> tuple[float, int, str]:
            return (-r.created_at.timestamp(), r.rank, r.id)

        rows = sorted(
            (r for r in self.rows.values() if self.user_of[r.id] == user_id and r.status == "approved"),
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
            self.chain_of.pop(rec, None)
        self.trace_rows = [t for t in self.trace_rows if t[1] != user_id]
        self.feedback = [f for f in self.feedback if f["user_id"] != user_id]


class FakeRecommenderUnitOfWork(FakeUnitOfWork, RecommenderUnitOfWork):
    def __init__(self) -> None:
        super().__init__()
        self.consent = InMemoryConsentProjection()
        self.recommendations = InMemoryRecommendationRepository()


async def assigned(bucket: Any, entry: dict[str, Any], user_id: str, upload_id: str) -> EventEnvelope:
    """``persona.assigned`` for ``user_id`` (a real report renamed), its details checked into the bucket."""
    report = AnalysisReport.model_validate({**entry["report"], "user_id": user_id})
    body = PersonaDetails(report=report, accounts=entry["accounts"]).model_dump_json(by_alias=True).encode()
    [claim] = await check_in_many(bucket, [(f"features/users/{user_id}/analysis/{upload_id}.json", body)])
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
