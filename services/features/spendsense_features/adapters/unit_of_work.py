"""The features unit of work on a SQLAlchemy session: its repositories, the consent projection, the
outbox and inbox of :class:`spendsense_shared.db.SqlUnitOfWork`."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from spendsense_features.adapters.orm import consent_projection
from spendsense_features.adapters.repositories import (
    SqlAnalysisRepository,
    SqlDetailsObjectRepository,
    SqlRuleSetRepository,
    SqlSnapshotRepository,
)
from spendsense_features.handlers.unit_of_work import FeaturesUnitOfWork
from spendsense_shared.consent_store import SqlConsentProjection
from spendsense_shared.db import SqlUnitOfWork


class SqlFeaturesUnitOfWork(SqlUnitOfWork, FeaturesUnitOfWork):
    def bind(self, session: AsyncSession) -> None:
        self.analyses = SqlAnalysisRepository(session)
        self.snapshots = SqlSnapshotRepository(session)
        self.rule_sets = SqlRuleSetRepository(session)
        self.details_objects = SqlDetailsObjectRepository(session)
        self.consent = SqlConsentProjection(session, consent_projection)
