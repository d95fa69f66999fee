"""The profile's unit of work on PostgreSQL: its repositories on the transaction's session."""

from __future__ import annotations

from sqlalchemy.ext.asyncio import AsyncSession

from spendsense_profile.adapters.data_store import SqlNormalizedData
from spendsense_profile.adapters.repositories import (
    SqlConsentRepository,
    SqlPushDeviceRepository,
    SqlUploadRepository,
)
from spendsense_profile.handlers.unit_of_work import ProfileUnitOfWork
from spendsense_shared.db import SqlUnitOfWork


class SqlProfileUnitOfWork(SqlUnitOfWork, ProfileUnitOfWork):
    def bind(self, session: AsyncSession) -> None:
        self.consents = SqlConsentRepository(session)
        self.uploads = SqlUploadRepository(session)
        self.data = SqlNormalizedData(session)
        self.push_devices = SqlPushDeviceRepository(session)
