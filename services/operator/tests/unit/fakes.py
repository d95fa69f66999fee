"""The operator's in-memory unit of work (so far, its consent projection), for handler unit tests."""

from __future__ import annotations

from spendsense_operator.handlers.unit_of_work import OperatorUnitOfWork
from spendsense_shared.testing.fakes import FakeUnitOfWork, InMemoryConsentProjection


class FakeOperatorUnitOfWork(FakeUnitOfWork, OperatorUnitOfWork):
    def __init__(self) -> None:
        super().__init__()
        self.consent = InMemoryConsentProjection()
