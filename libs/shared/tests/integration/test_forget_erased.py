"""``forget_published_of`` on real PostgreSQL: the SQL pseudonym matches :func:`pseudonym`, and only the
published events whose envelope names the erased user go."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import func, select, update

from spendsense_profile.adapters.orm import messaging
from spendsense_shared.db import Database, SqlUnitOfWork
from spendsense_shared.erasure import forget_erased_user, pseudonym
from spendsense_shared.messaging.catalog import ConsentRevoked, UserErased, new_event, parse_data
from spendsense_shared.messaging.envelope import EventEnvelope
from spendsense_shared.testing.fakes import FakeUnitOfWork


def revoked(user_id: str) -> EventEnvelope:
    data = ConsentRevoked(user_id=user_id, consent_id="c", revoked_at=datetime(2026, 11, 29, tzinfo=UTC))
    return new_event(data, user_id=user_id)


async def test_published_events_about_the_erased_user_go_and_nothing_else(migrated):
    database = Database(await migrated("profile"), messaging)
    outbox = database.tables.outbox
    events = {
        name: revoked(user) for name, user in (("gone", "u-gone"), ("kept", "u-kept"), ("pending", "u-gone"))
    }
    async with database.uow_factory(SqlUnitOfWork)() as uow:
        for event in events.values():
            uow.publish(event)
        await uow.commit()
    async with database.engine.begin() as conn:
        await conn.execute(
            update(outbox).where(outbox.c.event_id != events["pending"].id).values(published_at=func.now())
        )
    done = datetime(2026, 11, 29, 0, 1, tzinfo=UTC)
    erased = new_event(UserErased(subject=pseudonym("u-gone"), requested_at=None, completed_at=done))
    async with database.uow_factory(SqlUnitOfWork)() as uow:
        await forget_erased_user(erased, parse_data(erased), uow)
        await uow.commit()
    async with database.engine.connect() as conn:
        left = {r.event_id for r in await conn.execute(select(outbox.c.event_id))}
    assert left == {events["kept"].id, events["pending"].id}  # unpublished ones wait for the relay
    await database.dispose()


async def test_the_fake_forgets_the_same_events():
    uow = FakeUnitOfWork()
    kept, gone = revoked("u-kept"), revoked("u-gone")
    uow.published = [kept, gone]
    assert await uow.forget_published_of(pseudonym("u-gone")) == 1
    assert uow.published == [kept]
