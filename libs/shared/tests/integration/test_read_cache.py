"""The read cache against real PostgreSQL: the migrations' triggers notify exactly the users a committed
transaction changed, the listener forgets them, a process's own write is forgotten before its commit
returns, and a cache whose listener is gone answers nothing from memory.

The service-level tests (``services/profile/tests/integration/test_cached_reads.py``) show the same through
the routes."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest
from sqlalchemy import text

from spendsense_recommender.adapters.unit_of_work import SqlRecommenderUnitOfWork
from spendsense_recommender.bootstrap import SERVICE
from spendsense_shared.db import Database, asyncpg_dsn
from spendsense_shared.read_cache import ReadCache
from spendsense_shared.user_changes import UserChangeListener

VERSION = (0, 0)
NOW = datetime(2026, 11, 30, tzinfo=UTC)


@pytest.fixture
async def database(migrated) -> AsyncIterator[Database]:
    settings = await migrated(SERVICE)
    database = Database(settings, SERVICE.tables)
    yield database
    await database.dispose()


@pytest.fixture
async def listening(database) -> AsyncIterator[tuple[ReadCache, UserChangeListener]]:
    cache = ReadCache()
    dsn = asyncpg_dsn(database.settings.database_url.get_secret_value())
    listener = UserChangeListener(dsn, database.schema, cache)
    await listener.start()
    assert cache.listening
    yield cache, listener
    await listener.stop()


def remember(cache: ReadCache, *users: str) -> None:
    for user in users:
        cache.remember(user, "GET /x", b"{}", '"t"', cache.version(user))
        assert cache.lookup(user, "GET /x") is not None


async def eventually_forgotten(cache: ReadCache, user: str) -> None:
    for _ in range(200):
        if cache.lookup(user, "GET /x") is None:
            return
        await asyncio.sleep(0.02)
    raise AssertionError(f"{user} still cached")


async def grant(database: Database, user: str) -> None:
    async with database.uow_factory(SqlRecommenderUnitOfWork)() as uow:
        await uow.consent.apply(user, f"c-{user}", "granted", NOW)
        await uow.commit()


async def test_a_committed_change_forgets_that_user_and_no_other(database, listening):
    cache, _ = listening
    remember(cache, "u1", "u2")
    await grant(database, "u1")
    await eventually_forgotten(cache, "u1")
    await asyncio.sleep(0.2)  # the notification of u1 came; none of u2 follows
    assert cache.lookup("u2", "GET /x") is not None


async def test_a_rolled_back_change_forgets_nobody(database, listening):
    cache, _ = listening
    remember(cache, "u1")
    async with database.uow_factory(SqlRecommenderUnitOfWork)() as uow:
        await uow.consent.apply("u1", "c-u1", "granted", NOW)
        await uow.rollback()
    await grant(database, "u9")  # a later commit: once it is seen, an earlier one would have been too
    await eventually_forgotten(cache, "u9")
    assert cache.lookup("u1", "GET /x") is not None


async def test_an_update_that_moves_rows_forgets_both_users(database, listening):
    cache, _ = listening
    await grant(database, "u1")
    remember(cache, "u1", "u3")
    async with database.engine.begin() as conn:
        await conn.execute(text("UPDATE consent_projection SET user_id = 'u3' WHERE user_id = 'u1'"))
    await eventually_forgotten(cache, "u1")
    await eventually_forgotten(cache, "u3")


async def test_a_delete_forgets_the_user(database, listening):
    cache, _ = listening
    await grant(database, "u1")
    remember(cache, "u1")
    async with database.engine.begin() as conn:
        await conn.execute(text("DELETE FROM consent_projection WHERE user_id = 'u1'"))
    await eventually_forgotten(cache, "u1")


async def test_the_process_own_write_is_forgotten_before_its_commit_returns(database, listening):
    cache, listener = listening
    database.commit_watcher = listener
    remember(cache, "u1")
    await grant(database, "u1")
    assert cache.lookup("u1", "GET /x") is None  # no waiting: the commit waited for its notification


async def test_a_read_that_overlapped_a_change_is_not_remembered(database, listening):
    cache, listener = listening
    database.commit_watcher = listener
    before_the_read = cache.version("u1")
    await grant(database, "u1")  # committed while the read ran
    cache.remember("u1", "GET /x", b"old", '"old"', before_the_read)
    assert cache.lookup("u1", "GET /x") is None


def test_while_nobody_listens_nothing_is_answered_or_kept() -> None:
    cache = ReadCache()
    cache.listening = True
    remember(cache, "u1")
    cache.listening = False  # what the listener does when its connection is lost
    assert cache.lookup("u1", "GET /x") is None
    cache.remember("u2", "GET /x", b"{}", '"t"', cache.version("u2"))
    cache.listening = True
    assert cache.lookup("u2", "GET /x") is None  # nothing was kept meanwhile


async def test_a_lost_listen_connection_forgets_everything_and_listens_again(database, listening):
    cache, listener = listening
    remember(cache, "u1")
    opened = listener.connections
    async with database.engine.begin() as conn:
        await conn.execute(
            text("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE query LIKE 'LISTEN%'")
        )
    for _ in range(600):  # it reconnects at once, or after 1 s, 2 s, ... when PostgreSQL refuses
        if listener.connections > opened:
            break
        await asyncio.sleep(0.05)
    assert listener.connections > opened
    assert cache.listening
    assert cache.lookup("u1", "GET /x") is None  # what changed while nobody listened is unknown
    remember(cache, "u2")
    await grant(database, "u2")
    await eventually_forgotten(cache, "u2")
