"""The access checks' view of a user (erased? consent current?) on the real projection: one read gives
both, it is reused for at most its TTL, and a consent event or erasure this process applies is honoured
at once — so a short cache never lets a revoked or erased user's data out for longer than the bound."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import text, update

from spendsense_recommender.adapters.unit_of_work import SqlRecommenderUnitOfWork
from spendsense_recommender.bootstrap import SERVICE as RECOMMENDER
from spendsense_shared.consent import ProjectedConsent, apply_consent_event
from spendsense_shared.consent_store import TABLE_NAME
from spendsense_shared.db import asyncpg_dsn
from spendsense_shared.messaging.catalog import ConsentGranted, ConsentRevoked, new_event, parse_data
from spendsense_shared.messaging.envelope import EventEnvelope
from spendsense_shared.security import ConsentStanding
from spendsense_shared.user_changes import UserChangeListener

LONG_TTL_S = 3600.0  # longer than the test: only an invalidation can change the answer


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def granted(user_id: str, at: datetime) -> EventEnvelope:
    data = ConsentGranted(
        user_id=user_id, consent_id="c1", policy_version="1", scopes=["analysis"], granted_at=at
    )
    return new_event(data, user_id=user_id).model_copy(update={"occurred_at": at})


def revoked(user_id: str, at: datetime) -> EventEnvelope:
    data = ConsentRevoked(user_id=user_id, consent_id="c1", revoked_at=at)
    return new_event(data, user_id=user_id).model_copy(update={"occurred_at": at})


async def apply(unit_of_work: Callable[[], SqlRecommenderUnitOfWork], event: EventEnvelope) -> None:
    async with unit_of_work() as uow:
        await apply_consent_event(uow, event, parse_data(event))
        await uow.commit()


async def test_a_revocation_this_process_applies_is_honoured_at_once(migrated):
    platform = RECOMMENDER.platform(await migrated(RECOMMENDER))
    unit_of_work = platform.database.uow_factory(SqlRecommenderUnitOfWork)
    lookup = ProjectedConsent(unit_of_work, ttl_s=LONG_TTL_S)
    now = datetime.now(UTC)
    try:
        assert await lookup.standing("u-cache") == ConsentStanding(erased=False, current=False)
        await apply(unit_of_work, granted("u-cache", now))
        assert await lookup.standing("u-cache") == ConsentStanding(erased=False, current=True)
        await apply(unit_of_work, revoked("u-cache", now + timedelta(seconds=1)))
        assert await lookup.standing("u-cache") == ConsentStanding(erased=False, current=False)
        async with unit_of_work() as uow:
            await uow.consent.erase("u-cache", now + timedelta(seconds=2))
            await uow.commit()
        assert await lookup.standing("u-cache") == ConsentStanding(erased=True, current=False)
    finally:
        await platform.close()


async def test_a_change_made_elsewhere_is_honoured_within_the_ttl(migrated):
    """Another process revoked (here: the row changed behind the lookup's back): the cached answer lives
    no longer than the TTL, counted from before the read that produced it."""
    platform = RECOMMENDER.platform(await migrated(RECOMMENDER))
    unit_of_work = platform.database.uow_factory(SqlRecommenderUnitOfWork)
    clock = Clock()
    lookup = ProjectedConsent(unit_of_work, ttl_s=1.0, clock=clock)
    try:
        await apply(unit_of_work, granted("u-elsewhere", datetime.now(UTC)))
        assert (await lookup.standing("u-elsewhere")).current
        async with unit_of_work() as uow:
            table = uow.consent.table
            assert table.name == TABLE_NAME
            await uow.session.execute(
                update(table).where(table.c.user_id == "u-elsewhere").values(status="revoked")
            )
            await uow.commit()
        assert not await lookup.has_current_consent("u-elsewhere")  # the plain call always reads afresh
        clock.now += 0.5
        assert (await lookup.standing("u-elsewhere")).current  # within the bound: still the answer read
        clock.now += 0.5
        assert not (await lookup.standing("u-elsewhere")).current  # the bound: read again
    finally:
        await platform.close()


async def test_the_read_only_unit_of_work_reads_outside_a_transaction_and_never_commits(migrated):
    """What the access checks and the list read through: one statement, no BEGIN/ROLLBACK around it."""
    platform = RECOMMENDER.platform(await migrated(RECOMMENDER))
    read = platform.database.read_uow_factory(SqlRecommenderUnitOfWork)
    try:
        await apply(
            platform.database.uow_factory(SqlRecommenderUnitOfWork), granted("u-read", datetime.now(UTC))
        )
        async with read() as uow:
            assert await uow.consent.standing("u-read") == ConsentStanding(erased=False, current=True)
            first = (await uow.session.execute(text("SELECT now()"))).scalar_one()
            await uow.session.execute(text("SELECT pg_sleep(0.01)"))
            second = (await uow.session.execute(text("SELECT now()"))).scalar_one()
            assert second > first  # each statement its own transaction (in one, now() stands still)
            with pytest.raises(RuntimeError, match="nothing to commit"):
                await uow.commit()
    finally:
        await platform.close()


async def test_with_a_listening_read_cache_a_current_consent_outlives_the_ttl_until_a_revocation_elsewhere(
    migrated,
):
    platform = RECOMMENDER.platform(await migrated(RECOMMENDER))
    unit_of_work = platform.database.uow_factory(SqlRecommenderUnitOfWork)
    reads = 0

    def counted() -> SqlRecommenderUnitOfWork:
        nonlocal reads
        reads += 1
        return unit_of_work()

    clock = Clock()
    lookup = ProjectedConsent(counted, ttl_s=1.0, clock=clock, cache=platform.read_cache)
    dsn = asyncpg_dsn(platform.settings.database_url.get_secret_value())
    listener = UserChangeListener(dsn, platform.database.schema, platform.read_cache)
    await listener.start()
    platform.database.commit_watcher = listener  # as in the API: this process's commit is seen on return
    now = datetime.now(UTC)
    try:
        await apply(unit_of_work, granted("u-kept", now))
        assert await lookup.standing("u-kept") == ConsentStanding(erased=False, current=True)
        clock.now += 60  # far past the TTL: the read cache still knows, no read
        before = reads
        assert await lookup.standing("u-kept") == ConsentStanding(erased=False, current=True)
        assert reads == before
        other = RECOMMENDER.platform(platform.settings)  # another process (a worker) applies the revocation
        await apply(
            other.database.uow_factory(SqlRecommenderUnitOfWork), revoked("u-kept", now + timedelta(1))
        )
        await other.close()
        for _ in range(100):
            clock.now += 2  # past the TTL each time: only the read cache could keep the old answer
            if await lookup.standing("u-kept") == ConsentStanding(erased=False, current=False):
                break
            await asyncio.sleep(0.05)
        assert await lookup.standing("u-kept") == ConsentStanding(erased=False, current=False)
    finally:
        await listener.stop()
        await platform.close()
