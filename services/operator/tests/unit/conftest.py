"""The operator's handler unit tests run on its in-memory unit of work and data bucket."""

from __future__ import annotations

from typing import Any

import pytest

from spendsense_shared.testing.fakes import load_beside

fakes = load_beside(__file__, "fakes.py", "spendsense_operator_unit_fakes")


@pytest.fixture
def uow() -> Any:
    """A fresh ``FakeOperatorUnitOfWork``."""
    return fakes.FakeOperatorUnitOfWork()
