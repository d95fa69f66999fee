"""Fixtures of the profile handlers' unit tests: the in-memory unit of work and data bucket."""

from __future__ import annotations

import pytest
from unit.fakes import FakeProfileUnitOfWork

from spendsense_shared.testing.fakes import InMemoryBlobStore


@pytest.fixture
def uow() -> FakeProfileUnitOfWork:
    return FakeProfileUnitOfWork()


@pytest.fixture
def blobs() -> InMemoryBlobStore:
    return InMemoryBlobStore()
