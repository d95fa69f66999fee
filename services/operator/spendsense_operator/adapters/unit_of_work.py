"""The operator's unit of work on PostgreSQL."""

from sqlalchemy.ext.asyncio import AsyncSession

from spendsense_operator.adapters.orm import consent_projection
from spendsense_operator.handlers.unit_of_work import OperatorUnitOfWork
from spendsense_shared.consent_store import SqlConsentProjection
from spendsense_shared.db import SqlUnitOfWork


class SqlOperatorUnitOfWork(SqlUnitOfWork, OperatorUnitOfWork):
    def bind(self, session: AsyncSession) -> None:
        self.consent = SqlConsentProjection(session, consent_projection)
