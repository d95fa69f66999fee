"""A sealed trace verifies after the round trip it really makes: stored in PostgreSQL JSONB and read
back. JSONB keeps numbers as ``numeric``, so ``-0.0`` returns as ``0.0`` and ``1e+16`` as an integer;
a growth rate of ``-0.0`` once broke the chains of a third of a batch's users."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import text
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool

from spendsense_recommender.domain.trace import seal_chain, verify_chain

numbers = st.one_of(
    st.integers(min_value=-(2**62), max_value=2**62),
    st.floats(allow_nan=False, allow_infinity=False),
    st.sampled_from([-0.0, 0.0, 1e16, -1e16, 1.5e300, 5e-324, 0.1 + 0.2, 123456789.125]),
)
leaves = st.one_of(
    numbers,
    st.text(st.characters(exclude_characters="\x00", exclude_categories=["Cs"]), max_size=12),
    st.booleans(),
    st.none(),
)
documents = st.dictionaries(
    st.text(st.characters(exclude_characters="\x00", exclude_categories=["Cs"]), min_size=1, max_size=8),
    st.recursive(
        leaves,
        lambda inner: (
            st.lists(inner, max_size=4)
            | st.dictionaries(
                st.text(st.characters(exclude_characters="\x00", exclude_categories=["Cs"]), max_size=6),
                inner,
                max_size=4,
            )
        ),
        max_leaves=20,
    ),
    max_size=6,
)


@pytest.fixture
async def jsonb(infra: Any):
    engine = create_async_engine(infra.database_url, poolclass=NullPool)

    async def round_trip(values: list[dict[str, Any]]) -> list[dict[str, Any]]:
        async with engine.connect() as conn:
            stored = await conn.execute(
                text("SELECT CAST(value AS jsonb)::text FROM unnest(CAST(:values AS text[])) AS value"),
                {"values": [json.dumps(v) for v in values]},
            )
            return [json.loads(row[0]) for row in stored]

    yield round_trip
    await engine.dispose()


async def test_a_trace_holding_negative_zero_and_large_floats_verifies_after_jsonb(jsonb) -> None:
    traces = [
        {"signals": {"savings": {"growth_rate": -0.0, "balance": 18575.82}}, "big": 1e16, "tiny": 5e-324},
        {"signals": {"credit": {"utilization": 0.30000000000000004}}, "rates": [-0.0, 2.5e17]},
    ]
    sealed = seal_chain(traces, None)
    assert verify_chain(await jsonb(sealed)).ok


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    st.lists(
        documents.filter(lambda d: "chain" not in d and "operator_actions" not in d), min_size=1, max_size=3
    )
)
async def test_any_sealed_json_verifies_after_a_round_trip_through_jsonb(jsonb, traces) -> None:
    sealed = seal_chain(traces, None)
    assert verify_chain(await jsonb(sealed)).ok
