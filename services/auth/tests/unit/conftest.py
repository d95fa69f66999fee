"""Handler unit tests of the auth service: the in-memory unit of work and ports of ``fakes.py``."""

from __future__ import annotations

from typing import Any

import pytest

from spendsense_shared.testing.fakes import load_beside

fakes = load_beside(__file__, "fakes.py", "spendsense_auth_unit_fakes")


@pytest.fixture
def uow() -> Any:
    """A fresh ``FakeAuthUnitOfWork``."""
    return fakes.FakeAuthUnitOfWork()


@pytest.fixture
def clock() -> Any:
    return fakes.FakeClock()


@pytest.fixture
def tokens(clock: Any) -> Any:
    return fakes.FakeTokenIssuer(clock)
