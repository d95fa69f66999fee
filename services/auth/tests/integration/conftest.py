"""The real local OAuth/OIDC providers (``tests/oauth_provider.py``) the OAuth tests talk to over HTTP."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from spendsense_shared.testing.fakes import load_beside

# tests/oauth_provider.py: "beside" this test directory.
oauth_provider = load_beside(
    str(Path(__file__).parent), "oauth_provider.py", "spendsense_auth_tests_oauth_provider"
)


@pytest.fixture(scope="module")
def local_providers() -> Iterator[Any]:
    with oauth_provider.LocalProviders() as providers:
        yield providers


@pytest.fixture
def providers(local_providers: Any) -> Iterator[Any]:
    local_providers.reset()
    yield local_providers
    local_providers.reset()
