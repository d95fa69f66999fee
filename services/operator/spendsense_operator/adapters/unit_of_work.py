"""The operator's unit of work on PostgreSQL: its review queue, audit log, persona projection and
consent projection, and the outbox and inbox of :class:`spendsense_shared.db.SqlUnitOfWork`."""

from sqlalchemy.ext.asyncio import AsyncSession

from spendsense_operator.adapters.orm import consent_projection
from spendsense_operator.adapters.repositories import SqlAuditLog, SqlPersonaProjection, SqlReviewQueue
from spendsense_operator.handlers.unit_of_work import OperatorUnitOfWork
from spendsense_shared.consent_store import SqlConsentProjection
from spendsense_shared.db import SqlUnitOfWork


class SqlOperatorUnitOfWork(SqlUnitOfWork, OperatorUnitOfWork):
    def bind(self, session: AsyncSession) -> None:
        self.queue = SqlReviewQueue(session)
        self.audit = SqlAuditLog(session)
        self.personas = SqlPersonaProjection(session)
        self.consent = SqlConsentProjection(session, consent_projection)
