"""The auth unit of work on PostgreSQL: its repositories on the transaction's session."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from spendsense_auth.adapters.repositories import (
    SqlErasureRepository,
    SqlSessionRepository,
    SqlUserRepository,
)
from spendsense_auth.handlers.unit_of_work import AuthUnitOfWork
from spendsense_shared.db import SqlUnitOfWork


class SqlAuthUnitOfWork(SqlUnitOfWork, AuthUnitOfWork):
    def bind(self, session: AsyncSession) -> None:
        self.users = SqlUserRepository(session)
        self.sessions = SqlSessionRepository(session)
        self.erasures = SqlErasureRepository(session)
