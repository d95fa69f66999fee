"""Fixtures of the profile handlers' unit tests: the in-memory unit of work, data bucket and push."""

from __future__ import annotations

import pytest
from unit.fakes import FakeProfileUnitOfWork, FakePushNotifier, Uploads

from spendsense_shared.testing.fakes import InMemoryBlobStore


@pytest.fixture
def uow() -> FakeProfileUnitOfWork:
    return FakeProfileUnitOfWork()


@pytest.fixture
def blobs() -> InMemoryBlobStore:
    return InMemoryBlobStore()


@pytest.fixture
def push() -> FakePushNotifier:
    return FakePushNotifier()


@pytest.fixture
def uploads(uow: FakeProfileUnitOfWork, blobs: InMemoryBlobStore) -> Uploads:
    """The upload use cases on the fakes: receive a body, process it as the worker does."""
    return Uploads(uow, blobs)
