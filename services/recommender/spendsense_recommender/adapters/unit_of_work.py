"""The recommender's unit of work on a SQLAlchemy session: its repository, the index of review objects,
the consent projection, the outbox and inbox of :class:`spendsense_shared.db.SqlUnitOfWork`."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from spendsense_recommender.adapters.orm import consent_projection, review_objects
from spendsense_recommender.adapters.repository import SqlRecommendationRepository
from spendsense_recommender.handlers.unit_of_work import RecommenderUnitOfWork
from spendsense_shared.claimed_lines_store import SqlClaimedLinesRepository
from spendsense_shared.consent_store import SqlConsentProjection
from spendsense_shared.db import SqlUnitOfWork


class SqlRecommenderUnitOfWork(SqlUnitOfWork, RecommenderUnitOfWork):
    def bind(self, session: AsyncSession) -> None:
        self.recommendations = SqlRecommendationRepository(session)
        self.review_objects = SqlClaimedLinesRepository(session, review_objects, "recommender:reviews:")
        self.consent = SqlConsentProjection(session, consent_projection)
