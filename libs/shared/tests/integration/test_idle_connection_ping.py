"""A pooled connection PostgreSQL ended while it sat idle (a restart, ``spendsense restore``) is replaced
at checkout, so no request fails on it; a connection just used is not pinged (no round trips added to a
busy service's reads)."""

from __future__ import annotations

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine

from spendsense_profile.bootstrap import SERVICE
from spendsense_shared.db import create_engine


async def backend_pid(engine: AsyncEngine) -> int:
    async with engine.connect() as conn:
        return int((await conn.execute(text("SELECT pg_backend_pid()"))).scalar_one())


async def terminate(engine: AsyncEngine, pid: int) -> None:
    async with engine.connect() as conn:
        await conn.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})


def count_pings(engine: AsyncEngine) -> list[object]:
    pings: list[object] = []
    original = engine.dialect.do_ping

    def counting(dbapi_connection: object) -> bool:
        pings.append(dbapi_connection)
        return original(dbapi_connection)

    engine.dialect.do_ping = counting  # type: ignore[method-assign]
    return pings


@pytest.fixture
def settings(settings_for):  # type: ignore[no-untyped-def]
    return settings_for(SERVICE).model_copy(update={"db_pool_size": 1, "db_max_overflow": 0})


async def test_a_connection_ended_while_idle_is_replaced_unseen(settings):
    engine = create_engine(settings, idle_ping_s=0.0)  # every reuse counts as after a while
    killer = create_engine(settings, pool_size=1)
    pings = count_pings(engine)
    try:
        first = await backend_pid(engine)
        await terminate(killer, first)
        assert await backend_pid(engine) != first  # a fresh connection, and no error
        assert len(pings) == 1
    finally:
        await engine.dispose()
        await killer.dispose()


async def test_a_connection_just_used_is_not_pinged(settings):
    engine, killer = create_engine(settings), create_engine(settings, pool_size=1)
    pings = count_pings(engine)
    try:
        first = await backend_pid(engine)
        assert await backend_pid(engine) == first
        assert pings == []  # within IDLE_PING_S of its last use: no round trips added
        await terminate(killer, first)  # what that costs: an end within the window is seen once
        with pytest.raises(DBAPIError):
            await backend_pid(engine)
        assert await backend_pid(engine) != first  # …and the pool has replaced it
    finally:
        await engine.dispose()
        await killer.dispose()
