"""In-memory repositories and unit of work of the features service, for handler unit tests."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, date, datetime, timedelta
from typing import Any

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
    FeaturesUnitOfWork,
    RuleSetRepository,
    SnapshotRepository,
)
from spendsense_shared.consent import ConsentProjection
from spendsense_shared.testing.claimed_lines import InMemoryClaimedLines
from spendsense_shared.testing.fakes import FakeUnitOfWork, InMemoryConsentProjection


class Clock:
    """Strictly increasing timestamps (what ``now()`` gives each transaction in PostgreSQL)."""

    def __init__(self) -> None:
        self.now = datetime(2026, 11, 1, tzinfo=UTC)

    def tick(self) -> datetime:
        self.now += timedelta(seconds=1)
        return self.now


class InMemoryAnalysisRepository(AnalysisRepository):
    def __init__(self, clock: Clock) -> None:
        self.clock = clock
        self.signal_rows: dict[tuple[str, str], StoredSignals] = {}
        self.assignments: dict[tuple[str, str], PersonaAssignment] = {}
        self.history: dict[str, list[PersonaTransition]] = {}
        self.uploads_analyzed: dict[str, set[str]] = {}

    async def save(self, report: dict[str, Any], upload_id: str | None, rule_set_version: str) -> None:
        user_id, as_of = report["user_id"], date.fromisoformat(str(report["as_of"]))
        now = self.clock.tick()
        if upload_id is not None:
            self.uploads_analyzed.setdefault(upload_id, set()).add(user_id)
        for window, result in report["windows"].items():
            persona = result["persona"]
            previous = self.assignments.get((user_id, window))
            self.signal_rows[(user_id, window)] = StoredSignals(
                user_id, window, as_of, upload_id, now, result["signals"]
            )
            self.assignments[(user_id, window)] = PersonaAssignment(
                window, persona["primary"], persona["matched"], rule_set_version, as_of, now
            )
            self.history.setdefault(user_id, []).append(
                PersonaTransition(
                    window,
                    persona["primary"],
                    previous.primary if previous else None,
                    rule_set_version,
                    as_of,
                    now,
                )
            )

    async def reports_of_upload(
        self, upload_id: str, user_ids: list[str]
    ) -> list[tuple[dict[str, Any], str]]:
        reports: dict[str, tuple[dict[str, Any], str]] = {}
        for (user_id, window), row in sorted(self.signal_rows.items()):
            if user_id not in user_ids or row.upload_id != upload_id:
                continue
            assigned = self.assignments[(user_id, window)]
            report, _ = reports.setdefault(
                user_id,
                (
                    {"user_id": user_id, "as_of": row.as_of.isoformat(), "windows": {}},
                    assigned.rule_set_version,
                ),
            )
            report["windows"][window] = {
                "persona": {"primary": assigned.primary, "matched": assigned.matched},
                "signals": row.values,
            }
        return list(reports.values())

    async def analyzed(self, upload_id: str, user_ids: list[str]) -> set[str]:
        return {u for u in user_ids if u in self.uploads_analyzed.get(upload_id, set())}

    async def signals(self, user_id: str, window: str) -> StoredSignals | None:
        return self.signal_rows.get((user_id, window))

    async def current_personas(self, user_id: str) -> list[PersonaAssignment]:
        return sorted((a for (u, _), a in self.assignments.items() if u == user_id), key=lambda a: a.window)

    async def persona_history(
        self, user_id: str, limit: int, after: HistoryPosition | None = None
    ) -> list[PersonaTransition]:
        rows = sorted(self.history.get(user_id, []), key=lambda t: (t.assigned_at, t.window), reverse=True)
        if after is not None:
            rows = [t for t in rows if (t.assigned_at, t.window) < (after.assigned_at, after.window)]
        return rows[:limit]

    async def merge_user(self, source_user_id: str, target_user_id: str) -> None:
        for rows in (self.signal_rows, self.assignments):
            for user, window in [k for k in rows if k[0] == source_user_id]:
                moved = rows.pop((user, window))
                if (target_user_id, window) not in rows:
                    rows[(target_user_id, window)] = (
                        replace(moved, user_id=target_user_id) if isinstance(moved, StoredSignals) else moved
                    )
        if source_user_id in self.history:
            self.history.setdefault(target_user_id, []).extend(self.history.pop(source_user_id))

    async def erase_user(self, user_id: str) -> None:
        for rows in (self.signal_rows, self.assignments):
            for key in [k for k in rows if k[0] == user_id]:
                del rows[key]
        self.history.pop(user_id, None)


class InMemorySnapshotRepository(SnapshotRepository):
    def __init__(self, consent: ConsentProjection) -> None:
        self.consent = consent
        self.rows: dict[str, tuple[str, list[str], date | None]] = {}

    async def remember(
        self, user_id: str, upload_id: str, object_keys: list[str], as_of: date | None
    ) -> None:
        self.rows[user_id] = (upload_id, list(object_keys), as_of)

    async def of_consented_users(self) -> list[UserSnapshotKeys]:
        allowed = await self.consent.granted(list(self.rows))
        return [UserSnapshotKeys(u, self.rows[u][1]) for u in sorted(allowed)]

    async def merge_user(self, source_user_id: str, target_user_id: str) -> None:
        moved = self.rows.pop(source_user_id, None)
        if moved is not None:
            self.rows.setdefault(target_user_id, moved)

    async def erase_user(self, user_id: str) -> None:
        self.rows.pop(user_id, None)


InMemoryDetailsObjectRepository = InMemoryClaimedLines


class InMemoryRuleSetRepository(RuleSetRepository):
    def __init__(self, clock: Clock) -> None:
        self.clock = clock
        self.rows: dict[str, StoredRuleSet] = {}

    async def latest_activated(self) -> StoredRuleSet | None:
        activated = [r for r in self.rows.values() if r.activated_at is not None]
        return max(activated, key=lambda r: r.activated_at or self.clock.now, default=None)

    async def get(self, version: str) -> StoredRuleSet | None:
        return self.rows.get(version)

    async def add(self, version: str, document: Any, created_by: str) -> bool:
        if version in self.rows:
            return False
        self.rows[version] = StoredRuleSet(version, document, created_by, None)
        return True

    async def activate(self, version: str) -> None:
        if version in self.rows:
            self.rows[version] = replace(self.rows[version], activated_at=self.clock.tick())

    async def all(self) -> list[StoredRuleSet]:
        return list(self.rows.values())


class FakeFeaturesUnitOfWork(FakeUnitOfWork, FeaturesUnitOfWork):
    """One shared state across transactions (changes are kept even without a commit: tests check
    ``commits`` and ``published`` for the transaction boundary)."""

    def __init__(self) -> None:
        super().__init__()
        self.clock = Clock()
        self.consent = InMemoryConsentProjection()
        self.analyses = InMemoryAnalysisRepository(self.clock)
        self.snapshots = InMemorySnapshotRepository(self.consent)
        self.rule_sets = InMemoryRuleSetRepository(self.clock)
        self.details_objects = InMemoryDetailsObjectRepository()
